"""``#团队`` and the dashboard overview at size: 200 reps, 20,000 opportunities, 200,000 notes.

    python benchmarks/reports_bench.py                       # SQLite file in a temp dir
    python benchmarks/reports_bench.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/genjin_bench

Prints p50/p95 milliseconds of the team card (a manager's team, and a director's whole
company) and of GET /dash/ (overview page with its PNG chart), measured in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from benchmarks.harness import bench_config, running  # noqa: E402
from handlers.reports import views  # noqa: E402
from handlers.reports.links import issue_link  # noqa: E402
from storage.db import transaction  # noqa: E402
from storage.models import (  # noqa: E402
    Account,
    AuditLog,
    Escalation,
    Installment,
    Lead,
    LeadOffer,
    Note,
    Opportunity,
    PaymentPlan,
    Person,
    Task,
    Team,
)
from storage.scope import scope_for  # noqa: E402

STAGES = ["first_contact", "needs", "demo", "trial", "tender", "negotiation", "contract", "delivery", "payment"]
TEAMS, REPS_PER_TEAM, OPPS_PER_REP, NOTES_PER_REP = 20, 10, 100, 1000


async def seed(app, now: datetime) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    async with transaction(app.sessions) as s:
        director = Person(key="bench_dir", name="总监", role="director", created_at=now, updated_at=now)
        s.add(director)
        await s.flush()
        reps: list[int] = []
        for t in range(TEAMS):
            team = Team(key=f"t{t}", name=f"大区{t}", manager_key=f"m{t}")
            s.add(team)
            await s.flush()
            manager = Person(key=f"m{t}", name=f"经理{t}", role="manager", team_id=team.id, manager_id=director.id, created_at=now, updated_at=now)
            s.add(manager)
            await s.flush()
            for r in range(REPS_PER_TEAM):
                rep = Person(key=f"r{t}_{r}", name=f"代表{t}-{r}", role="rep", team_id=team.id, manager_id=manager.id, created_at=now, updated_at=now)
                s.add(rep)
                await s.flush()
                reps.append(rep.id)
        await s.execute(insert(Account), [{"name": f"医院{i}", "aliases": [], "created_at": now} for i in range(2000)])
        account_ids = list((await s.scalars(select(Account.id))).all())
    opp_rows = []
    for rep in reps:
        for i in range(OPPS_PER_REP):
            opp_rows.append({"account_id": rng.choice(account_ids), "owner_id": rep, "stage": rng.choice(STAGES),
                             "amount": rng.randrange(5, 500) * 10_000, "status": rng.choice(["open"] * 7 + ["won", "lost"]),
                             "stage_changed_at": now - timedelta(days=rng.randrange(1, 60)),
                             "last_activity_at": now - timedelta(days=rng.randrange(0, 30)), "created_at": now - timedelta(days=90)})
    for start in range(0, len(opp_rows), 5000):
        async with transaction(app.sessions) as s:
            await s.execute(insert(Opportunity), opp_rows[start:start + 5000])
    async with app.sessions() as s:
        opps = (await s.execute(select(Opportunity.id, Opportunity.owner_id, Opportunity.account_id))).all()
    by_owner: dict[int, list[tuple[int, int]]] = {}
    for opp_id, owner, account in opps:
        by_owner.setdefault(owner, []).append((opp_id, account))
    batch: list[dict[str, object]] = []
    for rep in reps:
        for j in range(NOTES_PER_REP):
            opp_id, account = by_owner[rep][j % OPPS_PER_REP]
            batch.append({"author_id": rep, "account_id": account, "opportunity_id": opp_id, "raw_text": f"跟进{j}",
                          "fields": {}, "source": "text", "transcript": "", "created_at": now - timedelta(hours=rng.randrange(0, 24 * 60))})
            if len(batch) == 10_000:
                async with transaction(app.sessions) as s:
                    await s.execute(insert(Note), batch)
                batch = []
    async with transaction(app.sessions) as s:
        if batch:
            await s.execute(insert(Note), batch)
        await s.execute(insert(Task), [{"owner_id": o, "opportunity_id": i, "text": "下一步", "status": "open",
                                        "due_date": (now - timedelta(days=rng.randrange(-10, 10))).date(), "created_at": now}
                                       for i, o, _a in opps[::3]])
        await s.execute(insert(AuditLog), [{"actor_id": o, "entity": "opportunity", "entity_id": i, "field": "stage",
                                            "old": rng.choice(STAGES), "new": rng.choice(STAGES), "at": now - timedelta(days=rng.randrange(0, 14))}
                                           for i, o, _a in opps[::4]])
        lead_rows = [(r, now - timedelta(hours=k * 7), rng.randrange(1, 40)) for r in reps for k in range(5)]
        await s.execute(insert(Lead), [{"assignee_id": r, "status": "claimed", "decision": {}, "problems": [], "created_at": at,
                                        "claimed_at": at + timedelta(minutes=m), "updated_at": at} for r, at, m in lead_rows])
        lead_ids = (await s.scalars(select(Lead.id).order_by(Lead.id))).all()
        await s.execute(insert(LeadOffer), [{"lead_id": lid, "rep_id": r, "offered_at": at, "status": "claimed",
                                             "closed_at": at + timedelta(minutes=m), "reason": ""}
                                            for lid, (r, at, m) in zip(lead_ids, lead_rows)])
        owed = opps[::40]
        await s.execute(insert(PaymentPlan), [{"opportunity_id": i, "owner_id": o, "total_amount": 100000, "source": "import",
                                               "created_at": now} for i, o, _a in owed])
        plan_ids = (await s.scalars(select(PaymentPlan.id).order_by(PaymentPlan.id))).all()
        await s.execute(insert(Installment), [{"plan_id": p, "seq": 1, "amount": 100000, "received_amount": 0, "status": "open",
                                               "due_date": (now - timedelta(days=rng.randrange(1, 70))).date(), "invoice_no": f"B-{p}",
                                               "trigger": "", "trigger_days": 0, "label": "", "created_at": now, "updated_at": now}
                                              for p in plan_ids])
        await s.execute(insert(Escalation), [{"kind": "overdue_payment", "subject_type": "installment", "subject_id": k + 1,
                                              "owner_id": o, "status": "open", "detail": {}, "created_at": now, "level": 1,
                                              "handled_level": 0, "snoozes": 0, "version": 1}
                                             for k, (i, o, _a) in enumerate(owed)])


def pct(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return f"p50 {statistics.median(samples):7.1f} ms   p95 {p95:7.1f} ms"


async def main(db: str | None, rounds: int) -> None:
    tmp = tempfile.mkdtemp(prefix="genjin-reports-bench-")
    url = db or f"sqlite+aiosqlite:///{tmp}/bench.db"
    config = bench_config(url, dashboard={"secret": "bench"}, pipeline={"workers": 0, "outbox_workers": 0})
    async with running(config, http=True, workers=False, org=None) as runtime:
        app = runtime.app
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        await seed(app, now)
        print(f"{app.engine.dialect.name}: seeded 200 reps, 20,000 opportunities, 200,000 notes in {time.perf_counter() - started:.0f} s")
        async with app.sessions() as s:
            manager = await s.scalar(select(Person).where(Person.key == "m3"))
            director = await s.scalar(select(Person).where(Person.key == "bench_dir"))
        for who, label in ((manager, "manager (10 reps)"), (director, "director (all)")):
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                async with app.sessions() as s:
                    scope = await scope_for(s, who)
                    await views.team_card(app, s, scope, who, now)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"  #团队  {label:20s} {pct(times)}")
        for who, label in ((manager, "manager (10 reps)"), (director, "director (all)")):
            async with transaction(app.sessions) as s:
                token = (await issue_link(s, "bench", who.id, app.clock.now(), 10)).token
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                base = f"http://127.0.0.1:{runtime.port}"
                async with http.get(f"{base}/dash/login", params={"t": token}) as r:
                    assert r.status == 200, r.status
                times = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    async with http.get(f"{base}/dash/") as r:
                        assert r.status == 200
                        await r.read()
                    times.append((time.perf_counter() - t0) * 1000)
            print(f"  /dash/ {label:20s} {pct(times)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.db, args.rounds))
