"""Routing decision, duplicate detection and batch simulation — all pure, no database."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from handlers.leads.dedupe import OpenLead, find_duplicate
from handlers.leads.intake import LeadInput
from handlers.leads.routing import MANAGER_QUEUE, OFFERED, RepState, RoutingState, route
from handlers.leads.rules import DEFAULT_RULES, Rules, load_rules, parse_rules
from handlers.leads.simulate import org_people_from_toml, simulate
from tests.conftest import DEMO_ORG

NOW = datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc)
KEYS = (("hospital", "phone"), ("hospital", "department", "contact"))

RULES = """
[[pool]]
id = "east"
strategy = "weighted_rr"
fallback = "backup"
members = [{rep = "a", weight = 2}, {rep = "b"}, {rep = "c"}]
[[pool]]
id = "backup"
strategy = "least_load"
fallback = "last"
members = [{rep = "d"}, {rep = "e", weight = 2}]
[[pool]]
id = "last"
members = [{rep = "f", open_cap = 1}]
[[rule]]
id = "east-ivd"
when = {region = ["上海", "江苏"], product_line = "IVD"}
pool = "east"
[[rule]]
id = "default"
when = {}
pool = "last"
"""


def _rules(extra_settings: str = "") -> Rules:
    return parse_rules(extra_settings + RULES, "t.toml")


def _state(**overrides: RepState) -> RoutingState:
    reps = {k: RepState() for k in "abcdef"}
    reps.update(overrides)
    return RoutingState(reps)


LEAD = LeadInput(hospital="瑞金医院", phone="13812345678", region="上海", product_line="IVD")


def _run(rules: Rules, state: RoutingState, n: int, excluded: frozenset[str] = frozenset()) -> Counter[str | None]:
    counts: Counter[str | None] = Counter()
    for _ in range(n):
        decision = route(LEAD, rules, state.for_lead(excluded), NOW)
        state.apply(decision, NOW)
        counts[decision.assignee] += 1
    return counts


def test_weights_2_1_1_over_400_leads() -> None:
    counts = _run(_rules(), _state(), 400)
    assert set(counts) == {"a", "b", "c"}
    for rep, expected in (("a", 200), ("b", 100), ("c", 100)):
        assert abs(counts[rep] - expected) <= 1, counts


def test_weighted_rr_uses_history_then_longest_wait() -> None:
    earlier, later = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    state = _state(a=RepState(offers_7d=4, last_offer_at=later), b=RepState(offers_7d=2, last_offer_at=later),
                   c=RepState(offers_7d=2, last_offer_at=earlier))
    decision = route(LEAD, _rules(), state, NOW)
    assert decision.assignee == "c" and decision.status == OFFERED  # 4/2 == 2/1 == 2/1; c waited longest
    assert decision.rule == "east-ivd" and decision.pool == "east" and "加权轮转" in decision.reason


def test_caps_respected() -> None:
    rules = parse_rules("""
[[pool]]
id = "p"
members = [{rep = "a", open_cap = 3}, {rep = "b", daily_cap = 2}, {rep = "c"}]
[[rule]]
id = "d"
when = {}
pool = "p"
""")
    state = _state(c=RepState(capacity=4))  # org capacity applies without a pool cap
    counts = _run(rules, state, 12)
    assert counts == Counter({"a": 3, "b": 2, "c": 4, None: 3})
    last = route(LEAD, rules, state, NOW)
    assert last.status == MANAGER_QUEUE
    assert dict(last.skipped) == {"a": "在手线索已满（3/3）", "b": "今日派单已满（2/2）", "c": "在手线索已满（4/4）"}


def test_excluded_inactive_and_away_reps_never_chosen() -> None:
    state = _state(b=RepState(active=False), c=RepState(away_until=NOW + timedelta(days=2)))
    counts = _run(_rules(), state, 30, excluded=frozenset({"a"}))
    assert set(counts) == {"d", "e"}  # east has nobody left → fallback pool
    decision = route(LEAD, _rules(), state.for_lead(frozenset({"a"})), NOW)
    assert dict(decision.skipped) == {"a": "已放弃或超时未接此线索", "b": "已停用", "c": "休假中（至 05-08 09:00）"}
    back = _state(c=RepState(away_until=NOW - timedelta(minutes=1)))
    assert route(LEAD, _rules(), back.for_lead(frozenset({"a", "b"})), NOW).assignee == "c"  # back from leave


def test_fallback_chain_then_manager_queue() -> None:
    state = _state()
    excluded = frozenset("abcde")
    first = route(LEAD, _rules(), state.for_lead(excluded), NOW)
    assert (first.assignee, first.pool, first.pools_tried) == ("f", "last", ("east", "backup", "last"))
    assert "资源池 east → backup 无人可派 → 后备池 last" in first.reason
    state.apply(first, NOW)
    second = route(LEAD, _rules(), state.for_lead(excluded), NOW)  # f is at open_cap 1
    assert second.status == MANAGER_QUEUE and second.assignee is None and second.rule == "east-ivd"
    assert "转经理分配" in second.reason and ("f", "在手线索已满（1/1）") in second.skipped


def test_fallback_cycle_does_not_loop() -> None:
    rules = parse_rules("""
[[pool]]
id = "x"
fallback = "y"
members = ["a"]
[[pool]]
id = "y"
fallback = "x"
members = ["b"]
[[rule]]
id = "d"
when = {}
pool = "x"
""")
    decision = route(LEAD, rules, _state().for_lead(frozenset("ab")), NOW)
    assert decision.status == MANAGER_QUEUE and decision.pools_tried == ("x", "y")


def test_least_load_by_weight() -> None:
    state = _state(d=RepState(open_leads=3), e=RepState(open_leads=5))
    decision = route(LEAD, _rules(), state.for_lead(frozenset("abc")), NOW)
    assert decision.assignee == "e" and "负载最低" in decision.reason  # 5/2 < 3/1


def test_first_match_and_missing_attributes() -> None:
    rules = _rules()
    no_region = LeadInput(hospital="x", phone="13812345678", product_line="IVD")
    assert route(no_region, rules, _state(), NOW).rule == "default"
    assert route(LeadInput(region="江苏省", product_line="ivd"), rules, _state(), NOW).rule == "east-ivd"


def test_hospital_owner_goes_first_if_eligible() -> None:
    state = _state(d=RepState(offers_7d=50))
    owned = route(LEAD, _rules(), state.for_lead(hospital_owner="d"), NOW)
    assert owned.assignee == "d" and "医院负责人" in owned.reason
    away = _state(d=RepState(away_until=NOW + timedelta(hours=1)))
    decision = route(LEAD, _rules(), away.for_lead(hospital_owner="d"), NOW)
    assert decision.assignee == "a" and decision.skipped[0][0] == "d"


def test_max_offers_goes_to_manager() -> None:
    decision = route(LEAD, _rules("[settings]\nmax_offers = 2\n"), _state().for_lead(attempts=2), NOW)
    assert decision.status == MANAGER_QUEUE and "已派发2次" in decision.reason


# ------------------------------------------------------------------ dedupe

def _open(i: int, days_ago: float, **fields: str) -> OpenLead:
    return OpenLead(f"L{i}", LeadInput(**fields).normalized(), NOW - timedelta(days=days_ago), assignee="a")


def test_same_hospital_and_phone_within_window_merges_into_earliest() -> None:
    new = LeadInput(hospital="瑞金 医院", phone="+86 138-1234-5678").normalized()
    candidates = [_open(2, 10, hospital="瑞金医院", phone="13812345678"),
                  _open(1, 80, hospital="瑞金医院", phone="13812345678"),
                  _open(3, 100, hospital="瑞金医院", phone="13812345678")]  # outside 90 days
    match = find_duplicate(new, candidates, KEYS, 90, 20, NOW)
    assert match is not None and match.into.id == "L1" and match.key == ("hospital", "phone")
    assert match.reason.startswith("90天内已有医院+电话相同的未结线索 L1")
    assert find_duplicate(new, candidates[2:], KEYS, 90, 20, NOW) is None


def test_hospital_only_match_never_merges() -> None:
    new = LeadInput(hospital="瑞金医院", phone="13900000000", department="骨科", contact="赵主任").normalized()
    candidates = [_open(i, 1, hospital="瑞金医院", phone=f"1381234{i:04d}", department="心内科") for i in range(30)]
    assert find_duplicate(new, candidates, KEYS, 90, 20, NOW) is None
    assert find_duplicate(new, candidates[:5], [("hospital",)], 90, 20, NOW) is None  # even if configured, under max_hits


def test_uninformative_key_is_ignored() -> None:
    switchboard = [_open(i, 1, hospital="瑞金医院", phone="021-64370045") for i in range(21)]
    new = LeadInput(hospital="瑞金医院", phone="02164370045", department="心内科", contact="王主任").normalized()
    assert find_duplicate(new, switchboard, KEYS, 90, 20, NOW) is None
    assert find_duplicate(new, switchboard[:20], KEYS, 90, 20, NOW) is not None  # exactly max_hits still counts
    same_person = _open(99, 5, hospital="瑞金医院", department="心内科", contact="王主任")
    match = find_duplicate(new, [*switchboard, same_person], KEYS, 90, 20, NOW)
    assert match is not None and match.into.id == "L99" and match.key == ("hospital", "department", "contact")


def test_contact_titles_are_kept_and_empty_never_matches() -> None:
    new = LeadInput(hospital="瑞金医院", department="心内科", contact="王医生").normalized()
    assert find_duplicate(new, [_open(1, 1, hospital="瑞金医院", department="心内科", contact="王主任")], KEYS, 90, 20, NOW) is None
    blank = LeadInput(hospital="瑞金医院").normalized()
    assert find_duplicate(blank, [_open(1, 1, hospital="瑞金医院")], KEYS, 90, 20, NOW) is None


# ------------------------------------------------------------------ simulate

def test_simulate_pipeline_statuses() -> None:
    leads = [
        LeadInput(external_id="L1", hospital="瑞金医院", phone="13812345678", region="上海", product_line="心血管", grade="三甲"),
        LeadInput(external_id="L2", hospital="瑞金医院", phone="138 1234 5678", region="上海", product_line="心血管"),
        LeadInput(external_id="L3", hospital="某医院", region="广东"),
        LeadInput(hospital="协和医院", phone="010-88888888", region="北京", product_line="影像"),
        LeadInput(external_id="L5", hospital="省医院", phone="13900000000", region="广东", product_line="IVD"),
        LeadInput(external_id="L6", hospital="华山医院", phone="13700000000", region="上海", product_line="心血管"),
    ]
    existing = [OpenLead("OLD", LeadInput(hospital="华山医院", phone="13700000000"), NOW - timedelta(days=3), "zhangwei")]
    results = list(simulate(leads, load_rules(DEFAULT_RULES), org_people_from_toml(DEMO_ORG), NOW, existing))
    assert [(r["lead"], r["status"]) for r in results] == [
        ("L1", "offered"), ("L2", "merged"), ("L3", "quarantined"), ("#4", "offered"), ("L5", "manager_queue"),
        ("L6", "merged")]
    assert results[1]["assignee"] == results[0]["assignee"] and "L1" in results[1]["reason"]
    assert results[2]["reason"] == "质量不合格，隔离待补全：缺少电话"
    assert results[3]["rule"] == "north-imaging" and results[4]["rule"] == "default"
    assert results[5]["assignee"] == "zhangwei"
    assert all(set(r) == {"lead", "status", "assignee", "rule", "reason"} for r in results)


def test_simulate_10000_leads() -> None:
    regions = ["上海", "江苏", "浙江", "北京", "天津", "河北", "广东"]
    lines = ["心血管", "影像", "IVD"]
    leads = [LeadInput(external_id=f"S{i}", hospital=f"医院{i % 997}", phone=f"139{i:08d}", region=regions[i % 7],
                       product_line=lines[i % 3], grade="三甲" if i % 2 else "") for i in range(10_000)]
    results = list(simulate(leads, load_rules(DEFAULT_RULES), org_people_from_toml(DEMO_ORG), NOW))
    statuses = Counter(r["status"] for r in results)
    assert len(results) == 10_000 and statuses["merged"] == statuses["quarantined"] == 0
    offered = Counter(r["assignee"] for r in results if r["status"] == "offered")
    # org capacity (25 for zhangwei, 15 for huangli, 20 otherwise) bounds what one batch can offer
    assert offered == {"zhangwei": 25, "lina": 20, "chenjing": 20, "liuyang": 20, "yangfan": 20, "huangli": 15}


@pytest.mark.parametrize("path", [DEFAULT_RULES])
def test_simulate_cli(path: object, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from handlers.leads.simulate import main

    csv = tmp_path / "l.csv"
    csv.write_text("id,hospital,phone,region,product_line\nA,瑞金医院,13812345678,上海,心血管\n", encoding="utf-8")
    assert main(["--leads", str(csv), "--rules", str(path), "--at", "2024-05-06T09:00"]) == 0
    out = capsys.readouterr()
    assert '"assignee": "zhangwei"' in out.out and "offered=1" in out.err
    csv.write_text("id,hospital,created_at\nA,x,never\n", encoding="utf-8")
    assert main(["--leads", str(csv)]) == 1 and "第2行" in capsys.readouterr().err
