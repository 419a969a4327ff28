"""Lead routing throughput: ``simulate`` (pure, in memory) and ``stored`` (through the service into a database).

usage: python benchmarks/leads_bench.py [--mode simulate|stored|both] [--leads 10000] [--repeat 3]
                                        [--db postgresql+asyncpg://…/EMPTY_DB]

Stored mode routes every lead through ``handlers.leads.service.intake`` in its own
transaction, as ``genjin leads import`` and ``POST /api/leads`` do: quality check, duplicate
look-up, the pool lock, the counters, the offer row, the claim timer and the offer card in
the outbox. It runs once (the database keeps what it stored); ``--db`` must name an empty
database (default: a temporary SQLite file).

Two scenarios: the shipped default rules with the demo org (caps fill after ~120 offers, so
most leads walk the whole fallback chain to the manager queue — the slow path), and a wide
org of 60 reps in one weighted pool with no caps (every lead is offered).  The synthetic
leads include ~5% duplicates and ~3% bad phones so dedupe and quarantine are exercised.
Generation and rule loading are outside the timed part; the best of ``--repeat`` runs is
printed, per wall-clock second.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.leads.intake import LeadInput  # noqa: E402
from handlers.leads.rules import DEFAULT_RULES, load_rules, parse_rules  # noqa: E402
from handlers.leads.simulate import org_people_from_toml, simulate  # noqa: E402

DEMO_ORG = Path(__file__).resolve().parents[1] / "bot" / "demo" / "org.toml"
REGIONS = ["上海市", "江苏省", "浙江", "北京", "天津", "河北", "广东", "四川"]
LINES = ["心血管", "影像", "IVD"]
GRADES = ["三级甲等", "3A", "二甲", "", "三级"]


def synthetic_leads(n: int) -> list[LeadInput]:
    leads = []
    for i in range(n):
        j = i - 7 if i % 20 == 19 else i  # every 20th lead repeats an earlier hospital+phone
        phone = "12345" if i % 33 == 0 else f"+86 139 {j:08d}"
        leads.append(LeadInput(external_id=f"B{i}", hospital=f"第{j % 1500}人民医院", department="心内科",
                               contact=f"王{j}主任", phone=phone, region=REGIONS[i % len(REGIONS)],
                               product_line=LINES[i % 3], grade=GRADES[i % len(GRADES)], source="bench"))
    return leads


def wide_scenario() -> tuple[object, dict[str, bool]]:
    reps = [f"rep{i:02d}" for i in range(60)]
    members = ", ".join(f'{{rep = "{r}", weight = {1 + i % 3}}}' for i, r in enumerate(reps))
    rules = parse_rules(f'[[pool]]\nid = "all"\nmembers = [{members}]\n[[rule]]\nid = "d"\nwhen = {{}}\npool = "all"\n')
    return rules, {r: True for r in reps}


def run(name: str, leads: list[LeadInput], rules: object, org: object, repeat: int) -> None:
    now = datetime(2024, 5, 6, 1, 0, tzinfo=timezone.utc)
    best, statuses = float("inf"), Counter()
    for _ in range(repeat):
        start = time.perf_counter()
        statuses = Counter(r["status"] for r in simulate(leads, rules, org, now))  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - start)
    print(f"{name:<28} {len(leads) / best:>9,.0f} leads/s  ({best * 1000:.0f} ms)  {dict(sorted(statuses.items()))}")


WIDE_RULES = "[[pool]]\nid = \"all\"\nmembers = [{members}]\n[[rule]]\nid = \"d\"\nwhen = {{}}\npool = \"all\"\n"


def wide_org_toml(reps: list[str]) -> str:
    people = "".join(f'[[people]]\nkey = "{r}"\nname = "销售{r}"\nrole = "rep"\nteam = "wide"\nmanager = "boss"\n'
                     f'capacity = 100000\n\n' for r in reps)
    return ('[[teams]]\nkey = "wide"\nname = "全国"\nmanager = "boss"\n\n'
            '[[people]]\nkey = "boss"\nname = "经理"\nrole = "manager"\nteam = "wide"\n\n'
            '[[people]]\nkey = "ops"\nname = "运营"\nrole = "sales_ops"\n\n' + people)


async def stored(name: str, leads: list[LeadInput], db_url: str, rules_path: Path, org_path: Path) -> None:
    from bot.app import build_runtime
    from bot.config import parse_config
    from handlers.leads import service
    from storage.db import transaction
    from storage.org import import_org, parse_org_file

    config = parse_config({"database": {"url": db_url}, "leads": {"rules": str(rules_path)},
                           "logging": {"level": "ERROR"}, "local": {"enabled": True}}, "bench", env={})
    runtime = build_runtime(config)
    await runtime.start(http=False, workers=False)
    try:
        async with transaction(runtime.app.sessions) as session:
            await import_org(session, parse_org_file(org_path))
        app = runtime.app
        _ = app.services.lexicon  # loaded once, outside the timed part
        statuses: Counter[str] = Counter()
        start = time.perf_counter()
        for lead in leads:
            async with app.sessions() as session, session.begin():
                statuses[(await service.intake(app, session, lead, now=app.clock.now())).status] += 1
        took = time.perf_counter() - start
    finally:
        await runtime.stop()
    print(f"{name:<28} {len(leads) / took:>9,.0f} leads/s  ({took * 1000:.0f} ms, {took / len(leads) * 1000:.2f} ms/lead)"
          f"  {dict(sorted(statuses.items()))}")


def main() -> None:
    import asyncio
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("simulate", "stored", "both"), default="both")
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", default="", help="an EMPTY database URL for stored mode (default: temporary SQLite)")
    args = parser.parse_args()
    leads = synthetic_leads(args.leads)
    if args.mode in ("simulate", "both"):
        run("default rules + demo org", leads, load_rules(DEFAULT_RULES), org_people_from_toml(DEMO_ORG), args.repeat)
        rules, org = wide_scenario()
        run("one pool, 60 reps, no caps", leads, rules, org, args.repeat)
    if args.mode in ("stored", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            reps = [f"rep{i:02d}" for i in range(60)]
            members = ", ".join(f'{{rep = "{r}", weight = {1 + i % 3}}}' for i, r in enumerate(reps))
            (folder / "rules.toml").write_text(WIDE_RULES.format(members=members), encoding="utf-8")
            (folder / "org.toml").write_text(wide_org_toml(reps), encoding="utf-8")
            url = args.db or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
            label = "stored " + ("PostgreSQL" if url.startswith("postgresql") else "SQLite") + ", 60 reps"
            asyncio.run(stored(label, leads, url, folder / "rules.toml", folder / "org.toml"))


if __name__ == "__main__":
    main()
