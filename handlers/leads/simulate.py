"""Dry-run routing over a batch of leads: what would happen if they arrived at ``now``.

Sales ops run it before switching on a rules change (``genjin leads simulate --leads
FILE.csv [--rules FILE] [--at ISO]``).  Each lead goes through the same steps as in
production — quality check → duplicate check (against the open leads given and the
earlier leads of the batch) → route — and the in-memory state is updated after each offer,
so caps and rotation behave as they would for the batch arriving in order at ``now``
(counters do not roll over midnight within a batch).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from handlers.leads.dedupe import DuplicateIndex, OpenLead, fold
from handlers.leads.files import parse_lead_file
from handlers.leads.intake import (
    DEFAULT_TZ,
    LeadInput,
    parse_datetime,
    quality_problems,
)
from handlers.leads.routing import OFFERED, RoutingState, initial_state, route
from handlers.leads.rules import DEFAULT_RULES, Rules, RulesError, check, load_rules

QUARANTINED = "quarantined"
MERGED = "merged"


def simulate(leads: Iterable[LeadInput], rules: Rules, org_people: Any, now: datetime,
             existing_open_leads: Iterable[OpenLead] = (),
             hospital_owners: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """One JSON-able dict per lead: ``{"lead", "status", "assignee", "rule", "reason"}``.

    ``status`` is ``offered``, ``merged``, ``quarantined`` or ``manager_queue``.  Existing open
    leads count towards their assignee's load and are duplicate candidates.
    ``hospital_owners`` maps a hospital name to the rep who owns its account.
    """
    settings = rules.settings
    state = initial_state(org_people)
    index = DuplicateIndex(settings.duplicate_keys, settings.duplicate_window_days, settings.max_hits)
    for open_lead in existing_open_leads:
        index.add(open_lead)
        if open_lead.assignee in state.reps:
            state.reps[open_lead.assignee].open_leads += 1
    owners = {fold(h): rep for h, rep in (hospital_owners or {}).items()}
    for number, raw in enumerate(leads, start=1):
        lead = raw.normalized()
        label = lead.external_id or f"#{number}"
        yield _one(lead, label, rules, state, index, owners, now)


def _one(lead: LeadInput, label: str, rules: Rules, state: RoutingState, index: DuplicateIndex,
         owners: Mapping[str, str], now: datetime) -> dict[str, Any]:
    problems = quality_problems(lead, rules.settings.required)
    if problems:
        return _result(label, QUARANTINED, None, None, "质量不合格，隔离待补全：" + "；".join(problems))
    duplicate = index.find(lead, now)
    if duplicate is not None:
        return _result(label, MERGED, duplicate.into.assignee, None, duplicate.reason)
    decision = route(lead, rules, state.for_lead(hospital_owner=owners.get(fold(lead.hospital))), now)
    state.apply(decision, now)
    index.add(OpenLead(label, lead, lead.created_at or now, decision.assignee))
    return _result(label, decision.status, decision.assignee, decision.rule, decision.reason)


def _result(label: str, status: str, assignee: str | None, rule: str | None, reason: str) -> dict[str, Any]:
    return {"lead": label, "status": status, "assignee": assignee, "rule": rule, "reason": reason}


# ------------------------------------------------------------------ command line

def org_people_from_toml(path: str | Path) -> dict[str, Any]:
    """key → {active, capacity} from an org TOML, without the database layer.

    Only what routing needs is read; ``genjin org import`` remains the validator of the file.
    """
    data = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
    people: dict[str, Any] = {}
    for entry in data.get("people", []):
        people[str(entry["key"])] = _Person(str(entry["key"]), bool(entry.get("active", True)),
                                            int(entry.get("capacity", 20)))
    return people


class _Person:
    __slots__ = ("key", "active", "capacity")

    def __init__(self, key: str, active: bool, capacity: int) -> None:
        self.key, self.active, self.capacity = key, active, capacity


def main(argv: list[str] | None = None) -> int:
    """``genjin leads simulate``; prints JSON lines on stdout and a summary on stderr."""
    parser = argparse.ArgumentParser(prog="genjin leads simulate", description="dry-run lead routing over a CSV/XLSX")
    parser.add_argument("--leads", required=True, help="CSV or XLSX with the import columns")
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="routing rules TOML")
    parser.add_argument("--org", default=str(Path(__file__).resolve().parents[2] / "bot" / "demo" / "org.toml"),
                        help="org TOML (people with key/active/capacity)")
    parser.add_argument("--at", help="routing time, ISO 8601 (default: now, Beijing time)")
    args = parser.parse_args(argv)
    try:
        rules = load_rules(args.rules)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 1
    people = org_people_from_toml(args.org)
    errors = [p for p in check(rules, people) if p.severity == "error"]
    if errors:
        print("\n".join(str(p) for p in errors), file=sys.stderr)
        return 1
    leads, row_errors = parse_lead_file(args.leads)
    if row_errors:
        print("\n".join(str(e) for e in row_errors), file=sys.stderr)
        return 1
    now = parse_datetime(args.at) if args.at else datetime.now(DEFAULT_TZ)
    totals: Counter[str] = Counter()
    for result in simulate(leads, rules, people, now):
        totals[result["status"]] += 1
        if result["status"] == OFFERED:
            totals[f"→{result['assignee']}"] += 1
        print(json.dumps(result, ensure_ascii=False))
    print(" ".join(f"{k}={v}" for k, v in sorted(totals.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
