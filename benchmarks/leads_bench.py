"""Lead routing throughput: ``simulate`` over 10,000 synthetic leads (pure, in memory).

usage: python benchmarks/leads_bench.py [--leads 10000] [--repeat 3]

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    leads = synthetic_leads(args.leads)
    run("default rules + demo org", leads, load_rules(DEFAULT_RULES), org_people_from_toml(DEMO_ORG), args.repeat)
    rules, org = wide_scenario()
    run("one pool, 60 reps, no caps", leads, rules, org, args.repeat)


if __name__ == "__main__":
    main()
