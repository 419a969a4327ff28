"""Routing rules: strict loading with file/key/problem, and checks against the org."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.leads.intake import LeadInput
from handlers.leads.rules import (
    DEFAULT_RULES,
    RulesError,
    check,
    load_rules,
    parse_rules,
)
from tests.conftest import DEMO_ORG

ORG = {"zhangwei": True, "lina": True, "chenjing": True, "gone": False}

BASE = """
[[pool]]
id = "a"
members = [{rep = "zhangwei", weight = 2, open_cap = 8, daily_cap = 6}, {rep = "lina"}]
[[pool]]
id = "inside_sales"
members = ["chenjing"]
"""


def _problems(text: str, org: object = ORG) -> list[str]:
    return [str(p) for p in check(parse_rules(text, "r.toml"), org)]


def test_example_from_the_brief_loads() -> None:
    rules = parse_rules(BASE + """
[settings]
max_offers = 3
required = ["hospital", "phone"]
duplicate_keys = [["hospital", "phone"], ["hospital", "department", "contact"]]
[[rule]]
id = "east"
when = {region = ["上海市", "江苏"], product_line = "IVD", grade = ["三级甲等"]}
pool = "a"
[[rule]]
id = "default"
when = {}
pool = "inside_sales"
""")
    assert rules.pools["a"].members[0].weight == 2 and rules.pools["a"].members[0].daily_cap == 6
    assert rules.pools["a"].members[1].open_cap is None
    lead = LeadInput(region="上海", product_line="ivd", grade="3A")
    assert rules.first_match(lead).id == "east"  # region, case and grade spellings folded
    assert rules.first_match(LeadInput(region="上海", product_line="IVD")).id == "default"  # missing grade never matches
    assert _problems(BASE + '[[rule]]\nid = "d"\nwhen = {}\npool = "a"\n') == []


def test_loader_lists_every_problem_with_file_and_key() -> None:
    with pytest.raises(RulesError) as err:
        parse_rules("""
[settings]
max_offers = 0
colour = "red"
duplicate_keys = [["hospital"]]
[[pool]]
id = "a"
strategy = "random"
members = [{rep = "x", weight = 0}, {rep = "x"}]
[[rule]]
id = "r"
when = {city = "上海", grade = []}
pool = "a"
""", "r.toml")
    text = str(err.value)
    for expected in ("r.toml: settings.max_offers: must be a whole number >= 1",
                     "r.toml: settings.colour: unknown key",
                     "settings.duplicate_keys[0]: a key needs a field besides hospital",
                     "pool[0].strategy: 'random' is not one of",
                     "pool[0].members[0].weight: must be a whole number >= 1",
                     "pool[0].members[1].rep: 'x' is listed twice",
                     "rule[0].when.city: unknown key",
                     "rule[0].when.grade: must be text or a non-empty list"):
        assert expected in text, expected
    assert len(err.value.problems) == 8


def test_invalid_toml_and_missing_file() -> None:
    with pytest.raises(RulesError, match="r.toml: not valid TOML"):
        parse_rules("[[pool]\n", "r.toml")
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(Path("/nonexistent/rules.toml"))


def test_missing_catch_all_is_reported() -> None:
    problems = _problems(BASE + '[[rule]]\nid = "only"\nwhen = {region = "上海"}\npool = "a"\n')
    assert problems == ["r.toml: rule: no catch-all rule (when = {}): a lead matching no rule would not be routed"]


def test_unknown_and_inactive_reps_unknown_pools() -> None:
    problems = _problems("""
[[pool]]
id = "a"
fallback = "nowhere"
members = ["zhangwei", "ghost", "gone"]
[[rule]]
id = "d"
when = {}
pool = "missing"
""")
    assert "r.toml: pool a: rep 'ghost' is not a person in the org" in problems
    assert "r.toml: pool a: fallback 'nowhere' is not a defined pool" in problems
    assert "r.toml: rule d: pool 'missing' is not a defined pool" in problems
    assert problems[-1] == "r.toml: pool a: warning: rep 'gone' is inactive and will never get a lead"
    # a plain set of keys means "all active"
    assert not any("gone" in p for p in _problems(BASE + '[[rule]]\nid = "d"\nwhen = {}\npool = "a"\n',
                                                    {"zhangwei", "lina", "chenjing"}))


def test_fallback_cycle_reported_once() -> None:
    problems = _problems("""
[[pool]]
id = "a"
fallback = "b"
members = ["zhangwei"]
[[pool]]
id = "b"
fallback = "c"
members = ["lina"]
[[pool]]
id = "c"
fallback = "a"
members = ["chenjing"]
[[rule]]
id = "d"
when = {}
pool = "a"
""")
    assert problems == ["r.toml: pool a: fallback cycle a → b → c → a"]


def test_shadowed_rules() -> None:
    problems = _problems(BASE + """
[[rule]]
id = "east"
when = {region = ["上海", "江苏"], product_line = "IVD"}
pool = "a"
[[rule]]
id = "sh-ivd-3a"
when = {region = "上海", product_line = "IVD", grade = "三甲"}
pool = "a"
[[rule]]
id = "sh-any"
when = {region = "上海"}
pool = "a"
[[rule]]
id = "default"
when = {}
pool = "inside_sales"
[[rule]]
id = "after-default"
when = {grade = "二甲"}
pool = "a"
""")
    assert problems == [
        "r.toml: rule sh-ivd-3a: is never used: earlier rule 'east' matches every lead it matches",
        "r.toml: rule after-default: is never used: earlier rule 'default' matches every lead it matches",
    ]  # sh-any is reachable: a Shanghai lead of another product line skips "east"


def test_default_rules_fit_the_demo_org() -> None:
    from storage.org import parse_org_file

    problems = check(load_rules(DEFAULT_RULES), parse_org_file(DEMO_ORG).people)
    assert [p.severity for p in problems] == ["warning"]  # the demo org has no inside-sales person
    assert "inside_sales" in str(problems[0])
