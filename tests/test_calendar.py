"""The sales calendar: working days (statutory + 调休 + TOML), the three clocks, the loader."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reminders.calendar import (
    PACKAGED_DIR,
    Calendar,
    CalendarError,
    CalendarSpec,
    Clock,
    format_duration,
    load_calendar,
    load_calendar_spec,
    parse_calendar_files,
    parse_duration,
    parse_hours,
)

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[1]


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


def cal(hours: str = "09:00-18:00", **kw: object) -> Calendar:
    return Calendar(CalendarSpec(hours=parse_hours(hours), **kw))  # type: ignore[arg-type]


M = timedelta(minutes=1)
H = timedelta(hours=1)


# ---- working days --------------------------------------------------------------


def test_statutory_holidays_and_makeup_workdays() -> None:
    c = cal()
    assert not c.is_working_day(date(2026, 10, 1))  # National Day
    assert not c.is_working_day(date(2026, 10, 5))
    assert c.is_working_day(date(2026, 10, 8))
    assert c.is_working_day(date(2026, 10, 10))  # Saturday, 调休 make-up workday
    assert not c.is_working_day(date(2026, 10, 11))  # plain Sunday
    assert not c.is_working_day(date(2026, 3, 14))
    assert c.day_info(date(2026, 10, 10)).kind == "makeup"
    assert c.day_info(date(2026, 10, 1)) .kind == "holiday"
    assert c.day_info(date(2026, 10, 1)).holiday == "国庆节"
    assert c.day_info(date(2026, 10, 11)).kind == "weekend"
    assert c.fallback_years_used == frozenset()


def test_extra_days_from_toml_win_over_statutory() -> None:
    c = cal(extra_holidays=frozenset({date(2026, 3, 16)}), extra_workdays=frozenset({date(2026, 10, 3)}))
    assert not c.is_working_day(date(2026, 3, 16))
    assert c.day_info(date(2026, 3, 16)).kind == "extra_holiday"
    assert c.is_working_day(date(2026, 10, 3))
    assert c.day_info(date(2026, 10, 3)).kind == "extra_workday"


def test_working_days_between_is_half_open() -> None:
    c = cal()
    assert c.working_days_between(date(2026, 9, 28), date(2026, 10, 12)) == 6  # 9/28-30, 10/8-10
    assert c.working_days_between(date(2026, 3, 16), date(2026, 3, 16)) == 0
    assert c.working_days_between(date(2026, 3, 20), date(2026, 3, 16)) == 0


def test_per_day_answers_are_cached_on_the_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    import chinese_calendar

    calls: list[date] = []
    real = chinese_calendar.is_workday
    monkeypatch.setattr(chinese_calendar, "is_workday", lambda d: calls.append(d) or real(d))
    c, other = cal(), cal()
    for _ in range(3):
        c.is_working_day(date(2026, 5, 6))
    assert calls == [date(2026, 5, 6)]
    other.is_working_day(date(2026, 5, 6))  # another calendar has its own cache
    assert len(calls) == 2


# ---- business clock ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (at(2026, 3, 13, 17, 50), 15, at(2026, 3, 16, 9, 5)),  # Fri evening → Mon
        (at(2026, 3, 13, 17, 50), 120, at(2026, 3, 16, 10, 50)),
        (at(2026, 3, 14, 10, 0), 15, at(2026, 3, 16, 9, 15)),  # starts on a Saturday
        (at(2026, 9, 30, 17, 30), 15, at(2026, 9, 30, 17, 45)),
        (at(2026, 9, 30, 17, 30), 120, at(2026, 10, 8, 10, 30)),  # National Day skipped
        (at(2026, 10, 9, 17, 55), 15, at(2026, 10, 10, 9, 10)),  # Saturday make-up workday
        (at(2026, 3, 16, 7, 0), 15, at(2026, 3, 16, 9, 15)),  # before opening
        (at(2026, 3, 13, 17, 45), 15, at(2026, 3, 13, 18, 0)),  # runs out exactly at closing: due at 18:00
    ],
)
def test_business_clock(start: datetime, minutes: int, due: datetime) -> None:
    result = cal().add(start, minutes * M, Clock.BUSINESS)
    assert result == due
    assert result.utcoffset() == timedelta(hours=8) and result.tzinfo == TZ


def test_business_clock_skips_lunch_break() -> None:
    c = cal("09:00-12:00,13:30-18:00")
    assert c.add(at(2026, 3, 11, 11, 50), 15 * M, Clock.BUSINESS) == at(2026, 3, 11, 13, 35)
    assert c.add(at(2026, 3, 11, 12, 30), 15 * M, Clock.BUSINESS) == at(2026, 3, 11, 13, 45)
    assert c.elapsed(at(2026, 3, 11, 11, 50), at(2026, 3, 11, 13, 35), Clock.BUSINESS) == 15 * M


def test_packaged_calendar_uses_default_hours() -> None:
    c = load_calendar()
    assert c.spec.hours == ((540, 720), (810, 1080))
    assert c.add(at(2026, 3, 11, 11, 50), 15 * M, "business") == at(2026, 3, 11, 13, 35)


def test_input_in_another_zone_is_converted() -> None:
    utc_start = datetime(2026, 3, 13, 9, 50, tzinfo=ZoneInfo("UTC"))  # = 17:50 Shanghai
    assert cal().add(utc_start, 15 * M, Clock.BUSINESS) == at(2026, 3, 16, 9, 5)


def test_naive_and_negative_inputs_are_rejected() -> None:
    c = cal()
    with pytest.raises(ValueError, match="timezone-aware"):
        c.add(datetime(2026, 3, 13, 10), 15 * M, Clock.BUSINESS)
    with pytest.raises(ValueError, match="negative"):
        c.add(at(2026, 3, 13, 10), -M, Clock.BUSINESS)
    with pytest.raises(ValueError, match="before start"):
        c.elapsed(at(2026, 3, 13, 10), at(2026, 3, 13, 9), Clock.BUSINESS)


# ---- zero durations and next working moment ------------------------------------


def test_zero_duration_is_the_next_working_moment() -> None:
    c = cal()
    assert c.add(at(2026, 3, 14, 10), timedelta(0), Clock.BUSINESS) == at(2026, 3, 16, 9)
    assert c.add(at(2026, 3, 13, 18), timedelta(0), Clock.BUSINESS) == at(2026, 3, 16, 9)  # 18:00 is closed
    assert c.add(at(2026, 3, 13, 9), timedelta(0), Clock.BUSINESS) == at(2026, 3, 13, 9)
    assert c.add(at(2026, 3, 14, 10), timedelta(0), Clock.WORKDAY) == at(2026, 3, 16, 0)
    assert c.add(at(2026, 3, 14, 10), timedelta(0), Clock.CALENDAR) == at(2026, 3, 14, 10)
    assert c.next_working_moment(at(2026, 9, 30, 18, 30)) == at(2026, 10, 8, 9)
    assert c.next_working_moment(at(2026, 10, 9, 19)) == at(2026, 10, 10, 9)


# ---- workday clock -------------------------------------------------------------


def test_workday_clock_counts_whole_working_days() -> None:
    c = cal()
    start = at(2026, 3, 13, 10)  # Friday, last activity
    assert c.add(start, 72 * H, Clock.WORKDAY) == at(2026, 3, 18, 10)
    assert c.add(start, 96 * H, Clock.WORKDAY) == at(2026, 3, 19, 10)
    assert c.elapsed(start, at(2026, 3, 16, 10), Clock.WORKDAY) == 24 * H  # weekend not counted
    assert c.add(at(2026, 9, 30, 10), 24 * H, Clock.WORKDAY) == at(2026, 10, 8, 10)  # holiday week skipped


# ---- calendar clock and send windows -------------------------------------------


@pytest.mark.parametrize(
    ("due", "days", "sent"),
    [
        (date(2026, 3, 1), 15, at(2026, 3, 16, 9, 30)),
        (date(2026, 3, 1), 30, at(2026, 3, 31, 9, 30)),
        (date(2026, 3, 1), 45, at(2026, 4, 15, 9, 30)),
        (date(2026, 9, 20), 15, at(2026, 10, 8, 9, 30)),  # 10-05 is National Day
    ],
)
def test_overdue_payment_cards_go_out_at_0930_on_a_working_day(due: date, days: int, sent: datetime) -> None:
    c = cal()
    start = datetime.combine(due, time(0), tzinfo=TZ)
    overdue = c.add(start, timedelta(days=days), Clock.CALENDAR)
    assert c.next_working_day_at(overdue, time(9, 30)) == sent


def test_send_window_is_at_or_after_the_moment() -> None:
    c = cal()
    assert c.next_working_day_at(at(2026, 3, 16, 9, 30), time(9, 30)) == at(2026, 3, 16, 9, 30)
    assert c.next_working_day_at(at(2026, 3, 16, 9, 31), time(9, 30)) == at(2026, 3, 17, 9, 30)
    assert c.next_working_day_at(at(2026, 3, 13, 12), time(9, 30)) == at(2026, 3, 16, 9, 30)


# ---- years chinese_calendar does not cover -------------------------------------


def test_uncovered_year_falls_back_to_monday_friday_and_reports_it() -> None:
    c = cal(extra_holidays=frozenset({date(2027, 1, 11)}))
    assert c.fallback_years_used == frozenset()
    # Fri 2027-01-08 17:50 + 15m: weekend, then Mon 01-11 is an extra holiday → Tue 09:05
    assert c.add(at(2027, 1, 8, 17, 50), 15 * M, Clock.BUSINESS) == at(2027, 1, 12, 9, 5)
    assert c.fallback_years_used == frozenset({2027})
    assert c.day_info(date(2027, 1, 13)).fallback
    assert c.day_info(date(2027, 1, 11)).kind == "extra_holiday"
    assert c.is_working_day(date(2027, 1, 1))  # unknown New Year: Mon–Fri says work (ops must add it)
    assert Calendar.uncovered_years(date(2026, 6, 1), date(2028, 1, 1)) == (2027, 2028)
    assert c.fallback_years_used == frozenset({2027})  # uncovered_years has no side effect


# ---- add/elapsed are inverses --------------------------------------------------


@pytest.mark.parametrize("clock", list(Clock))
@pytest.mark.parametrize("hours", ["09:00-18:00", "09:00-12:00,13:30-18:00"])
def test_elapsed_is_the_inverse_of_add(clock: Clock, hours: str) -> None:
    rng = random.Random(20260313)
    c = cal(hours, extra_holidays=frozenset({date(2026, 11, 2)}), extra_workdays=frozenset({date(2026, 11, 7)}))
    base = at(2026, 9, 1)
    for _ in range(300):
        start = base + timedelta(minutes=rng.randrange(0, 120 * 24 * 60), seconds=rng.randrange(60))
        duration = timedelta(minutes=rng.choice([0, 1, 15, 120, 540, 600, 72 * 60, 144 * 60]) + rng.randrange(0, 30))
        due = c.add(start, duration, clock)
        assert due >= start
        assert c.elapsed(start, due, clock) == duration, (start, duration, clock)
        assert due == c.next_working_moment(start, clock) or c.elapsed(start, due - timedelta(seconds=1), clock) < duration
        # the other way round: the budget consumed up to any moment brings add() back to (at most) that moment
        end = start + timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
        used = c.elapsed(start, end, clock)
        back = c.add(start, used, clock)
        assert back <= end or back == c.next_working_moment(start, clock)
        assert c.elapsed(start, back, clock) == used


def test_elapsed_splits_add() -> None:
    """Pausing after part of the budget and resuming later uses exactly the remainder."""
    c = cal()
    start, pause = at(2026, 3, 13, 17, 50), at(2026, 3, 13, 17, 55)
    used = c.elapsed(start, pause, Clock.BUSINESS)
    assert used == 5 * M
    assert c.add(at(2026, 3, 18, 14), 15 * M - used, Clock.BUSINESS) == at(2026, 3, 18, 14, 10)


# ---- durations -----------------------------------------------------------------


def test_parse_duration() -> None:
    assert parse_duration("15m") == 15 * M
    assert parse_duration("72h") == 72 * H
    assert parse_duration("15d") == timedelta(days=15)
    assert parse_duration("1h30m") == 90 * M
    assert parse_duration("１５ｍ") == 15 * M
    assert format_duration(90 * M) == "1h30m"
    for bad in ("15", "m", "1.5h", "30m1h", "1h1h", "-5m", "15 minutes"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# ---- TOML loader ---------------------------------------------------------------


def test_packaged_calendar_is_valid() -> None:
    spec = load_calendar_spec()
    assert spec.timezone == "Asia/Shanghai" and spec.source == str(PACKAGED_DIR)


def test_directory_of_files_is_merged(tmp_path: Path) -> None:
    (tmp_path / "10-base.toml").write_text('hours = "08:30-17:30"\nextra_holidays = [2026-03-16]\n', encoding="utf-8")
    (tmp_path / "20-team.toml").write_text('extra_holidays = ["2026-03-17"]\nextra_workdays = [2026-10-03]\n', encoding="utf-8")
    c = load_calendar(tmp_path)
    assert c.spec.hours == ((510, 1050),)
    assert c.spec.extra_holidays == {date(2026, 3, 16), date(2026, 3, 17)}
    assert c.spec.timezone == "Asia/Shanghai"
    assert c.add(at(2026, 3, 13, 17, 20), 15 * M, Clock.BUSINESS) == at(2026, 3, 18, 8, 35)


def test_loader_reports_every_problem_with_file_and_key() -> None:
    files = [
        (
            "a.toml",
            'hours = "09:00-08:00"\ntimezone = "Mars/Olympus"\nextra_holidays = [2026-10-10, "2026-13-01", 2026-10-10]\n'
            "holidays = []\n",
        ),
        ("b.toml", 'hours = "09:00-18:00"\nextra_workdays = [2026-10-10]\nextra_holidays = "2026-10-01"\n'),
        ("c.toml", "hours = [\n"),
    ]
    with pytest.raises(CalendarError) as err:
        parse_calendar_files(files)
    problems = err.value.problems
    expected = [
        "a.toml: holidays: unknown key",
        "a.toml: extra_holidays[2]: '2026-13-01' is not a date",
        "a.toml: extra_holidays[3]: 2026-10-10 is listed twice",
        "b.toml: hours: already set in a.toml",
        "b.toml: extra_holidays: must be a list of dates",
        "c.toml: not valid TOML",
        "a.toml: hours: segment '09:00-08:00' ends before it starts",
        "a.toml: timezone: unknown time zone 'Mars/Olympus'",
        "a.toml: extra_holidays: 2026-10-10 is also an extra workday (b.toml: extra_workdays)",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert len(problems) == len(expected)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("09:00-12:00,11:00-18:00", "overlaps"),
        ("9-18", "not HH:MM-HH:MM"),
        ("09:00-25:00", "impossible"),
        ("", "empty"),
    ],
)
def test_bad_hours(hours: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hours(hours)


def test_full_width_hours_and_24h_day() -> None:
    assert parse_hours("０９：００－１２：００，１３：３０－１８：００") == ((540, 720), (810, 1080))
    assert parse_hours("00:00-24:00") == ((0, 1440),)


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="does not exist"):
        load_calendar_spec(tmp_path / "nope")
    with pytest.raises(CalendarError, match=r"no \*\.toml"):
        load_calendar_spec(tmp_path)


def test_calendar_package_does_not_import_bot_storage_or_handlers() -> None:
    code = (
        "import sys, reminders.calendar, reminders.ladders, reminders.ladder_timers\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bot', 'storage', 'handlers'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 0, result.stderr
