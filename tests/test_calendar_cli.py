"""``genjin calendar due|check|show`` agrees with the library on every acceptance case."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from reminders.calendar import (
    Calendar,
    CalendarSpec,
    Clock,
    load_calendar,
    parse_duration,
    parse_hours,
)

TZ = ZoneInfo("Asia/Shanghai")
NINE_TO_SIX = Calendar(CalendarSpec(hours=parse_hours("09:00-18:00")))

CASES = [
    # start, duration, clock, hours, expected
    ("2026-03-13T17:50", "15m", "business", "09:00-18:00", "2026-03-16T09:05:00+08:00"),
    ("2026-03-13T17:50", "120m", "business", "09:00-18:00", "2026-03-16T10:50:00+08:00"),
    ("2026-03-14T10:00", "15m", "business", "09:00-18:00", "2026-03-16T09:15:00+08:00"),
    ("2026-09-30T17:30", "15m", "business", "09:00-18:00", "2026-09-30T17:45:00+08:00"),
    ("2026-09-30T17:30", "120m", "business", "09:00-18:00", "2026-10-08T10:30:00+08:00"),
    ("2026-10-09T17:55", "15m", "business", "09:00-18:00", "2026-10-10T09:10:00+08:00"),
    ("2026-03-11T11:50", "15m", "business", "09:00-12:00,13:30-18:00", "2026-03-11T13:35:00+08:00"),
    ("2026-03-13T10:00", "72h", "workday", "09:00-18:00", "2026-03-18T10:00:00+08:00"),
    ("2026-03-13T10:00", "96h", "workday", "09:00-18:00", "2026-03-19T10:00:00+08:00"),
    ("2026-03-13T09:50:00+00:00", "15m", "business", "09:00-18:00", "2026-03-16T09:05:00+08:00"),  # UTC input
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["calendar", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("start", "duration", "clock", "hours", "expected"), CASES)
def test_due_agrees_with_library(
    capsys: pytest.CaptureFixture[str], start: str, duration: str, clock: str, hours: str, expected: str
) -> None:
    code, out, err = run(capsys, "due", start, duration, "--clock", clock, "--hours", hours)
    assert (code, err) == (0, "")
    assert out == expected + "\n"
    library = Calendar(CalendarSpec(hours=parse_hours(hours)))
    start_dt = datetime.fromisoformat(start)
    start_dt = start_dt if start_dt.tzinfo else start_dt.replace(tzinfo=TZ)
    assert library.add(start_dt, parse_duration(duration), Clock(clock)).isoformat() == expected


@pytest.mark.parametrize(
    ("due", "days", "expected"),
    [
        ("2026-03-01", "15d", "2026-03-16T09:30:00+08:00"),
        ("2026-03-01", "30d", "2026-03-31T09:30:00+08:00"),
        ("2026-03-01", "45d", "2026-04-15T09:30:00+08:00"),
        ("2026-09-20", "15d", "2026-10-08T09:30:00+08:00"),
    ],
)
def test_due_with_send_window(capsys: pytest.CaptureFixture[str], due: str, days: str, expected: str) -> None:
    code, out, _ = run(capsys, "due", f"{due}T00:00", days, "--clock", "calendar", "--send-at", "09:30")
    assert (code, out) == (0, expected + "\n")
    start = datetime.combine(date.fromisoformat(due), time(0), tzinfo=TZ)
    library = NINE_TO_SIX.next_working_day_at(NINE_TO_SIX.add(start, parse_duration(days), Clock.CALENDAR), time(9, 30))
    assert library.isoformat() == expected


def test_due_without_hours_uses_packaged_calendar(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "due", "2026-03-11T11:50", "15m")
    assert (code, out) == (0, "2026-03-11T13:35:00+08:00\n")
    assert load_calendar().add(datetime(2026, 3, 11, 11, 50, tzinfo=TZ), timedelta(minutes=15)).isoformat() + "\n" == out


def test_due_in_fallback_year_honours_dir_and_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "calendar.toml").write_text('hours = "09:00-18:00"\nextra_holidays = [2027-01-11]\n', encoding="utf-8")
    code, out, err = run(capsys, "due", "2027-01-08T17:50", "15m", "--dir", str(tmp_path))
    assert (code, out) == (0, "2027-01-12T09:05:00+08:00\n")
    assert "2027" in err and "warning" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["due", "yesterday", "15m"], "START"),
        (["due", "2026-03-13T10:00", "15"], "DURATION"),
        (["due", "2026-03-13T10:00", "1d"], "business clock"),
        (["due", "2026-03-13T10:00", "15m", "--hours", "9-18"], "--hours"),
        (["show", "2026-13"], "YYYY-MM"),
    ],
)
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err


def test_check_ok(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "check")
    assert code == 0 and out.startswith("ok: ")
    (tmp_path / "c.toml").write_text("extra_workdays = [2026-10-03]\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", str(tmp_path))
    assert code == 0 and out.startswith("ok: ") and "1 extra workdays" in out


def test_check_reports_file_key_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('hours = "09:00-12:00,11:00-18:00"\nextra_holidays = [2026-10-10]\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text("extra_workdays = [2026-10-10]\nextra_holiday = []\n", encoding="utf-8")
    code, out, err = run(capsys, "check", str(tmp_path))
    assert code == 1 and out == ""
    lines = [line.strip() for line in err.splitlines()[1:]]
    assert lines == [
        "b.toml: extra_holiday: unknown key (allowed: timezone, hours, extra_holidays, extra_workdays)",
        "a.toml: hours: segment '11:00-18:00' overlaps or comes before the previous one; list segments in order",
        "a.toml: extra_holidays: 2026-10-10 is also an extra workday (b.toml: extra_workdays); "
        "a day cannot be both — remove it from one list",
    ]


def test_show_marks_days_off_and_makeup_workdays(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "2026-10")
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == " Mon Tue Wed Thu Fri Sat Sun"
    assert lines[2] == "              1*  2*  3*  4*"
    assert lines[3] == "  5*  6*  7*  8   9  10+ 11-"
    assert "工作日 working days: 18 / 31" in out
    assert "  10-01..10-07 * holiday 国庆节" in lines
    assert "  10-10 + makeup 国庆节" in lines
    assert "图例 legend" in out
    cal = load_calendar()
    working = sum(cal.is_working_day(date(2026, 10, d)) for d in range(1, 32))
    assert working == 18


def test_show_fallback_year_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "calendar.toml").write_text("extra_holidays = [2027-01-01]\n", encoding="utf-8")
    code, out, _ = run(capsys, "show", "2027-01", "--dir", str(tmp_path))
    assert code == 0
    assert "  1x  2-  3-" in out
    assert "2027 不在法定节假日数据内" in out


def test_ladders_are_listed_and_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "ladders")
    assert code == 0
    assert "stalled_deal (workday):" in out and "3. after 6d → director, when amount >= 500000" in out
    assert "1. after 15d → owner, at 09:30 on a working day" in out
    (tmp_path / "bad.toml").write_text('[[ladder]]\nid = "x"\nclock = "business"\n[[ladder.level]]\nat = "2d"\naudience = ["owner"]\n', encoding="utf-8")
    code, _, err = run(capsys, "ladders", str(tmp_path))
    assert code == 1 and "bad.toml" in err
