"""Escalation detection: 50,000 open opportunities and 100,000 installments watched by timers, swept by one node.

The rows are what production holds (opportunities, payment plans, installments, and one
timer each on the stalled-deal / receivable ladders); 1% of each is overdue at the sweep.
The detection sweep runs the real ladder handlers: the escalation episode is opened, the
card built (hospital, last note, next level) and queued through notify for the level's
audience. Prints the cost of an idle sweep (nothing due, the every-5-seconds case) and of
the detection sweep, in seconds.

    python benchmarks/escalations_bench.py                 # SQLite in a temp dir
    python benchmarks/escalations_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, insert, select

from harness import bench_config, running  # noqa: I001 - benchmarks/ is on sys.path
from bot.clock import FakeClock
from reminders.timers import sweep_timers
from storage.models import Account, Escalation, Installment, Opportunity, OutboxRow, PaymentPlan, Person, Timer

START = datetime(2026, 3, 16, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
REPS = ["zhangwei", "lina", "chenjing", "liuyang", "yangfan", "huangli"]
CHUNK = 5000


async def _bulk(session, model, rows) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(rows), CHUNK):
        await session.execute(insert(model), rows[i : i + CHUNK])


async def run(db_url: str, deals: int, installments: int, due_share: float) -> dict[str, float | int]:
    clock = FakeClock(START)
    config = bench_config(db_url, pipeline={"workers": 0, "outbox_workers": 0})
    async with running(config, workers=False) as runtime:
        runtime.app.clock = clock
        app = runtime.app
        every = max(1, int(1 / due_share))
        started = time.perf_counter()
        async with app.sessions() as session:
            async with session.begin():
                people = {p.key: p.id for p in (await session.scalars(select(Person))).all()}
                await _bulk(session, Account, [{"name": f"医院{i:04d}", "aliases": [], "region": "", "grade": "",
                                                "created_at": START} for i in range(1000)])
                first_account = await session.scalar(select(func.min(Account.id)))
                stalled = app.timers.math("stalled_deal")
                quiet_due = stalled.next_fire_at(stalled.start(START), {"amount": 0})
                opps, timers = [], []
                for i in range(deals):
                    overdue = i % every == 0
                    anchor = START - timedelta(days=10) if overdue else START
                    opps.append({"account_id": first_account + i % 1000, "owner_id": people[REPS[i % 6]], "stage": "demo",
                                 "amount": 100_000 + (i % 20) * 50_000, "status": "open", "stage_changed_at": anchor,
                                 "last_activity_at": anchor, "created_at": anchor})
                await _bulk(session, Opportunity, opps)
                first_opp = await session.scalar(select(func.min(Opportunity.id)))
                for i in range(deals):
                    overdue = i % every == 0
                    timers.append({"subject_type": "opportunity", "subject_id": first_opp + i, "ladder": "stalled_deal",
                                   "clock": "workday", "level": 0, "consumed_seconds": 0.0,
                                   "anchor_at": START - timedelta(days=10) if overdue else START,
                                   "due_at": START - timedelta(minutes=1) if overdue else quiet_due, "state": "running",
                                   "version": 1, "attributes": {"owner": REPS[i % 6], "amount": opps[i]["amount"], "stage": "demo"},
                                   "created_at": START, "updated_at": START})
                await _bulk(session, Timer, timers)
                plans = [{"opportunity_id": first_opp + i % deals, "account_id": first_account + i % 1000,
                          "owner_id": people[REPS[i % 6]], "contract_no": "", "total_amount": 200_000, "source": "import",
                          "created_at": START} for i in range(installments)]
                await _bulk(session, PaymentPlan, plans)
                first_plan = await session.scalar(select(func.min(PaymentPlan.id)))
                today = date(2026, 3, 16)
                await _bulk(session, Installment, [
                    {"plan_id": first_plan + i, "seq": 1, "label": "发票", "amount": 200_000,
                     "due_date": today - timedelta(days=20) if i % every == 0 else today + timedelta(days=30),
                     "trigger": "", "trigger_days": 0, "received_amount": 0, "status": "open", "invoice_no": f"INV{i}",
                     "created_at": START, "updated_at": START} for i in range(installments)])
                first_inst = await session.scalar(select(func.min(Installment.id)))
                receivable = app.timers.math("receivable")
                later = receivable.next_fire_at(receivable.start(START + timedelta(days=30)))
                await _bulk(session, Timer, [
                    {"subject_type": "installment", "subject_id": first_inst + i, "ladder": "receivable", "clock": "calendar",
                     "level": 0, "consumed_seconds": 0.0,
                     "anchor_at": START - timedelta(days=20) if i % every == 0 else START + timedelta(days=30),
                     "due_at": START - timedelta(minutes=1) if i % every == 0 else later, "state": "running", "version": 1,
                     "attributes": {"owner": REPS[i % 6], "amount": 200_000}, "created_at": START, "updated_at": START}
                    for i in range(installments)])
        load = time.perf_counter() - started

        clock.set(START - timedelta(minutes=2))  # nothing due yet
        started = time.perf_counter()
        assert await sweep_timers(app) == 0
        idle = time.perf_counter() - started

        clock.set(START)
        started = time.perf_counter()
        fired = await sweep_timers(app)
        sweep = time.perf_counter() - started
        async with app.sessions() as session:
            episodes = await session.scalar(select(func.count()).select_from(Escalation))
            queued = await session.scalar(select(func.count()).select_from(OutboxRow))
    return {
        "open_opportunities": deals,
        "installments": installments,
        "timers": deals + installments,
        "overdue": fired,
        "escalations_opened": int(episodes or 0),
        "outbox_rows": int(queued or 0),
        "seed_seconds": load,
        "idle_sweep_seconds": idle,
        "detection_sweep_seconds": sweep,
        "escalations_per_s": fired / sweep if sweep else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--deals", type=int, default=50_000)
    parser.add_argument("--installments", type=int, default=100_000)
    parser.add_argument("--due", type=float, default=0.01, help="share of subjects overdue at the sweep")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/escalations.db"
        result = asyncio.run(run(db, args.deals, args.installments, args.due))
    print(f"escalation detection benchmark ({db.split(':', 1)[0]})")
    for key, value in result.items():
        print(f"  {key:24s} {value:.3f}" if isinstance(value, float) else f"  {key:24s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
