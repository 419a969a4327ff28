"""Escalation ladders (TOML, conditions) and the pure timer math built on the calendar."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from reminders.calendar import Calendar, CalendarSpec, Clock, parse_hours
from reminders.ladder_timers import LadderTimer, TimerState
from reminders.ladders import (
    LadderError,
    load_ladders,
    parse_condition,
    parse_ladder_files,
)

TZ = ZoneInfo("Asia/Shanghai")
CAL = Calendar(CalendarSpec(hours=parse_hours("09:00-18:00")))
LADDERS = load_ladders()
M = timedelta(minutes=1)


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


def timer(ladder_id: str) -> LadderTimer:
    return LadderTimer(LADDERS.get(ladder_id), CAL)


def fire_times(t: LadderTimer, state: TimerState, attributes: dict[str, object] | None = None) -> list[datetime | None]:
    return [d.fire_at for d in t.schedule(state, attributes)]


# ---- packaged ladders ----------------------------------------------------------


def test_packaged_ladders() -> None:
    assert LADDERS.ids() == ("lead_claim", "stalled_deal", "receivable", "stalled_deal_tender")
    lead = LADDERS.get("lead_claim")
    assert lead.clock is Clock.BUSINESS
    assert [(lv.at, lv.audience, lv.action) for lv in lead.levels] == [
        (15 * M, ("owner",), "remind"),
        (120 * M, ("owner", "manager"), "reassign"),
    ]
    stalled = LADDERS.get("stalled_deal")
    assert stalled.clock is Clock.WORKDAY and [lv.at for lv in stalled.levels] == [timedelta(hours=h) for h in (72, 96, 144)]
    assert stalled.level(3).audience == ("director",) and stalled.level(3).when is not None
    receivable = LADDERS.get("receivable")
    assert receivable.level(3).audience == ("owner", "manager", "finance", "director")
    assert all(lv.send_at == time(9, 30) for lv in receivable.levels)  # ladder-level default


# ---- due moments ---------------------------------------------------------------


def test_lead_claim_due_moments() -> None:
    t = timer("lead_claim")
    state = t.start(at(2026, 3, 13, 17, 50))
    assert fire_times(t, state) == [at(2026, 3, 16, 9, 5), at(2026, 3, 16, 10, 50)]
    assert t.next_fire_at(state) == at(2026, 3, 16, 9, 5)


def test_stalled_deal_director_only_for_large_amounts() -> None:
    t = timer("stalled_deal")
    state = t.start(at(2026, 3, 13, 10))
    small = fire_times(t, state, {"amount": 100_000})
    assert small == [at(2026, 3, 18, 10), at(2026, 3, 19, 10)]
    assert fire_times(t, state, {"amount": Decimal("500000")}) == [*small, at(2026, 3, 23, 10)]
    assert fire_times(t, state) == small  # unknown amount: the condition does not hold


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (at(2026, 3, 1), [at(2026, 3, 16, 9, 30), at(2026, 3, 31, 9, 30), at(2026, 4, 15, 9, 30)]),
        (at(2026, 9, 20), [at(2026, 10, 8, 9, 30), at(2026, 10, 20, 9, 30), at(2026, 11, 4, 9, 30)]),
    ],
)
def test_receivable_send_window(due: datetime, expected: list[datetime]) -> None:
    t = timer("receivable")
    assert fire_times(t, t.start(due)) == expected
    due_at = [d.due_at for d in t.schedule(t.start(due))]
    assert due_at[0] == due + timedelta(days=15)


# ---- pause and resume ----------------------------------------------------------


def test_pause_with_resume_date_recomputes_from_remaining_budget() -> None:
    t = timer("lead_claim")
    state = t.start(at(2026, 3, 16, 9))
    paused = t.pause(state, at(2026, 3, 16, 9, 10), until=at(2026, 3, 18, 14))
    assert paused.consumed == 10 * M and t.status(paused) == "paused"
    assert fire_times(t, paused) == [at(2026, 3, 18, 14, 5), at(2026, 3, 18, 15, 50)]
    assert t.consumed(paused, at(2026, 3, 17, 12)) == 10 * M  # nothing counts while paused
    assert t.consumed(paused, at(2026, 3, 18, 14, 3)) == 13 * M  # resumed by itself at 14:00
    firing = t.due_levels(paused, at(2026, 3, 18, 14, 6))
    assert firing.fire is not None and firing.fire.number == 1 and firing.superseded == ()
    assert firing.state.paused_at is None and firing.state.anchor == at(2026, 3, 18, 14)
    assert firing.next_fire_at == at(2026, 3, 18, 15, 50)


def test_pause_without_date_waits_for_resume() -> None:
    t = timer("lead_claim")
    paused = t.pause(t.start(at(2026, 3, 16, 9)), at(2026, 3, 16, 9, 10))
    assert fire_times(t, paused) == [None, None] and t.next_fire_at(paused) is None
    assert t.due_levels(paused, at(2026, 4, 1, 12)).fire is None
    resumed = t.resume(paused, at(2026, 3, 19, 8))  # before opening: counting starts at 09:00
    assert fire_times(t, resumed) == [at(2026, 3, 19, 9, 5), at(2026, 3, 19, 10, 50)]
    assert t.resume(resumed, at(2026, 3, 20, 9)) is resumed  # resuming a running timer changes nothing


def test_pause_twice_keeps_budget_and_moves_resume_date() -> None:
    t = timer("stalled_deal")
    state = t.start(at(2026, 3, 13, 10))
    paused = t.pause(state, at(2026, 3, 16, 10), until=at(2026, 3, 23))
    again = t.pause(paused, at(2026, 3, 20, 10), until=at(2026, 3, 30))
    assert again.consumed == paused.consumed == timedelta(hours=24)
    assert fire_times(t, again) == [at(2026, 4, 1, 0), at(2026, 4, 2, 0)]


def test_pause_rejects_impossible_moments() -> None:
    t = timer("lead_claim")
    state = t.start(at(2026, 3, 16, 9))
    with pytest.raises(ValueError, match="before the pause"):
        t.pause(state, at(2026, 3, 16, 10), until=at(2026, 3, 16, 9, 30))
    with pytest.raises(ValueError, match="before the timer started"):
        t.pause(state, at(2026, 3, 16, 8))
    with pytest.raises(ValueError, match="timezone-aware"):
        t.start(datetime(2026, 3, 16, 9))


# ---- firing after downtime -----------------------------------------------------


def test_only_the_highest_overdue_level_fires() -> None:
    t = timer("lead_claim")
    state = t.start(at(2026, 3, 16, 9))
    assert t.due_levels(state, at(2026, 3, 16, 9, 14)).fire is None
    first = t.due_levels(state, at(2026, 3, 16, 9, 16))
    assert first.fire is not None and first.fire.number == 1 and first.next_fire_at == at(2026, 3, 16, 11)
    late = t.due_levels(state, at(2026, 3, 16, 11, 30))  # the sweep was down for two hours
    assert late.fire is not None and late.fire.number == 2 and late.fire.action == "reassign"
    assert [lv.number for lv in late.superseded] == [1]
    assert late.state.fired == 2 and late.next_fire_at is None and t.status(late.state) == "done"
    assert t.due_levels(late.state, at(2026, 3, 17, 12)).fire is None  # never fires twice


def test_downtime_with_conditions() -> None:
    t = timer("stalled_deal")
    state = t.start(at(2026, 3, 13, 10))
    big = t.due_levels(state, at(2026, 3, 24, 9), {"amount": 800_000})
    assert big.fire is not None and big.fire.number == 3 and [lv.number for lv in big.superseded] == [1, 2]
    small = t.due_levels(state, at(2026, 3, 24, 9), {"amount": 80_000})
    assert small.fire is not None and small.fire.number == 2 and [lv.number for lv in small.superseded] == [1]
    assert small.next_fire_at is None
    # the deal grows later: the director level still comes
    grown = t.due_levels(small.state, at(2026, 3, 25, 9), {"amount": 900_000})
    assert grown.fire is not None and grown.fire.number == 3 and grown.superseded == ()


def test_send_window_delays_firing() -> None:
    t = timer("receivable")
    state = t.start(at(2026, 9, 20))
    assert t.due_levels(state, at(2026, 10, 5, 12)).fire is None  # due on a holiday: waits for 10-08 09:30
    firing = t.due_levels(state, at(2026, 10, 8, 9, 30))
    assert firing.fire is not None and firing.fire.number == 1


# ---- conditions ----------------------------------------------------------------


def test_condition_language() -> None:
    cond = parse_condition('amount >= 500_000 and stage != "won"')
    assert cond.holds({"amount": 500000, "stage": "bidding"})
    assert not cond.holds({"amount": 499999.99, "stage": "bidding"})
    assert not cond.holds({"amount": 600000, "stage": "won"})
    assert not cond.holds({"stage": "bidding"})  # missing field
    assert not cond.holds({"amount": "600000", "stage": "bidding"})  # text is not a number
    assert not parse_condition("flag == 1").holds({"flag": True})  # a bool is not a number
    assert parse_condition("days < 3.5").holds({"days": 3})
    assert parse_condition("ｄａｙｓ　＞＝　３").holds({"days": 3})  # full-width input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("amount", "incomplete"),
        ("amount >= 1 or stage == 2", "expected 'and'"),
        ('__import__("os").system("x")', "unexpected character"),
        ("amount >= other", "not a number"),
        ('stage > "won"', "only be compared with == or !="),
        ("amount => 5", "unexpected character '='"),
        ("amount 5 == 3", "expected one of"),
        ("and >= 5", "expected a field name"),
        ("", "must be a condition"),
    ],
)
def test_bad_conditions(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_condition(text)


# ---- strict loading ------------------------------------------------------------

BROKEN = """
[[ladder]]
id = "lead_claim"
clock = "business"
colour = "red"
[[ladder.level]]
at = "1d"
audience = ["owner", "boss", "owner", "role:sales_ops", "team:east-1"]
[[ladder.level]]
at = "10m"
audience = ["manager"]
action = "fire"
send_at = "9:30"
when = "amount >> 5"

[[ladder]]
id = "Receivable"
clock = "lunar"
"""


def test_loader_names_file_ladder_level_key_and_problem() -> None:
    with pytest.raises(LadderError) as err:
        parse_ladder_files([("ladders.toml", BROKEN), ("more.toml", '[[ladder]]\nid = "x"\nclock = "calendar"\n')])
    assert err.value.problems == [
        "ladders.toml: ladder lead_claim: colour: unknown key (allowed: clock, id, level, send_at)",
        "ladders.toml: ladder lead_claim: level 1: at: '1d' — on the business clock a 'd' would mean 24 working "
        'hours; write hours or minutes (9 working hours a day: 3 days = "27h")',
        "ladders.toml: ladder lead_claim: level 1: audience[2]: unknown audience 'boss' "
        "(allowed: owner, manager, director, finance, role:KEY, team:KEY)",
        "ladders.toml: ladder lead_claim: level 1: audience[3]: 'owner' is listed twice",
        "ladders.toml: ladder lead_claim: level 2: action: 'fire' is not one of remind, reassign",
        "ladders.toml: ladder lead_claim: level 2: send_at: '9:30' is not a time \"HH:MM\" (e.g. \"09:30\")",
        "ladders.toml: ladder lead_claim: level 2: when: 'amount >> 5': '>' is not a number or a "
        '"quoted text" value',
        "ladders.toml: ladder 2: id: 'Receivable' — needs a lowercase id like \"lead_claim\"",
        "ladders.toml: ladder 2: clock: 'lunar' is not one of business, workday, calendar",
        "ladders.toml: ladder 2: level: at least one [[ladder.level]] is needed",
        "more.toml: ladder x: level: at least one [[ladder.level]] is needed",
    ]


def test_levels_must_increase_and_ids_be_unique() -> None:
    one = '[[ladder]]\nid = "a"\nclock = "workday"\n[[ladder.level]]\nat = "96h"\naudience = ["owner"]\n' \
          '[[ladder.level]]\nat = "72h"\naudience = ["manager"]\n'
    two = '[[ladder]]\nid = "a"\nclock = "calendar"\n[[ladder.level]]\nat = "15d"\naudience = ["finance"]\n'
    with pytest.raises(LadderError) as err:
        parse_ladder_files([("one.toml", one), ("two.toml", two), ("bad.toml", "ladder = 3")])
    assert err.value.problems == [
        "one.toml: ladder a: level 2: at: must be later than level 1 (list levels in increasing order of at)",
        "bad.toml: ladder: write ladders as [[ladder]] tables",
    ]
    with pytest.raises(LadderError, match="already defined in one.toml"):
        parse_ladder_files([("one.toml", two), ("two.toml", two)])
