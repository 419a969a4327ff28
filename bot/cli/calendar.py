"""``genjin calendar …``: let sales ops check the calendar and see what a deadline turns into.

* ``due START DURATION [--clock business|workday|calendar] [--hours SEGMENTS] [--send-at HH:MM]
  [--dir DIR]`` prints the due moment as ISO 8601 with offset (a naive START is calendar-zone
  time); ``--send-at 09:30`` moves it to the first working day at/after it at 09:30, as a
  ladder level with ``send_at`` does.
* ``check [DIR]`` validates the calendar TOML (exit 1 and one ``file: key: problem`` line
  per problem; exit 0 and ``ok …``).
* ``show YYYY-MM [--dir DIR]`` prints the month as a grid with days off, make-up workdays
  (调休) and the company's extra days marked, and a legend.

The directory is ``--dir``, else ``[calendar] dir`` from the config once that section
exists, else the packaged calendar. All the answers come from :mod:`reminders.calendar`;
this module only parses arguments and formats.
"""

from __future__ import annotations

import argparse
import calendar as month_calendar
import dataclasses
import re
import sys
from datetime import datetime, time
from pathlib import Path

from reminders.calendar import (
    PACKAGED_DIR,
    Calendar,
    CalendarError,
    Clock,
    DayInfo,
    format_duration,
    load_calendar_spec,
    parse_duration,
    parse_hours,
)
from reminders.calendar.durations import duration_uses_days

MARKS = {
    "workday": " ",
    "weekend": "-",
    "holiday": "*",
    "makeup": "+",
    "extra_holiday": "x",
    "extra_workday": "w",
}
LEGEND = (
    "图例 legend:  * 法定节假日 holiday   + 调休上班 make-up workday   - 周末 weekend\n"
    "              x 公司休息 extra holiday   w 公司上班 extra workday   (no mark) 工作日 workday"
)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


def _directory(args: argparse.Namespace, positional: str | None = None) -> Path:
    """``--dir``/positional, else ``[calendar] dir`` (when the config has that section), else packaged."""
    chosen = positional or getattr(args, "dir", None)
    if chosen:
        return Path(chosen)
    from bot.config import Config, load_config

    if "calendar" in Config.model_fields:  # the section is added by whoever wires the calendar into the bot
        section = getattr(load_config(args.config), "calendar", None)
        configured = getattr(section, "dir", "")
        if configured:
            return Path(configured)
    return PACKAGED_DIR


def _load(directory: Path) -> Calendar | None:
    try:
        return Calendar(load_calendar_spec(directory))
    except CalendarError as exc:
        print(f"工作日历有误 / calendar is invalid ({directory}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _warn_fallback(calendar: Calendar) -> None:
    for year in sorted(calendar.fallback_years_used):
        print(
            f"warning: {year} 不在法定节假日数据内，按周一至周五加 extra_holidays/extra_workdays 计算",
            file=sys.stderr,
        )


def cmd_due(args: argparse.Namespace) -> int:
    calendar = _load(_directory(args))
    if calendar is None:
        return 1
    try:
        if args.hours:
            calendar = Calendar(dataclasses.replace(calendar.spec, hours=parse_hours(args.hours)))
    except ValueError as exc:
        print(f"error: --hours: {exc}", file=sys.stderr)
        return 2
    try:
        start = calendar.localize(datetime.fromisoformat(args.start))
    except ValueError:
        print(f"error: START: not an ISO 8601 time: {args.start!r} (e.g. 2026-03-13T17:50)", file=sys.stderr)
        return 2
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        print(f"error: DURATION: {exc}", file=sys.stderr)
        return 2
    clock = Clock(args.clock)
    if clock is Clock.BUSINESS and duration_uses_days(args.duration):
        print("error: DURATION: on the business clock 'd' would mean 24 working hours; write hours or minutes",
              file=sys.stderr)
        return 2
    due = calendar.add(start, duration, clock)
    if args.send_at:
        try:
            send_at = time.fromisoformat(args.send_at)
        except ValueError:
            print(f"error: --send-at: not a time HH:MM: {args.send_at!r}", file=sys.stderr)
            return 2
        due = calendar.next_working_day_at(due, send_at)
    print(due.isoformat())
    _warn_fallback(calendar)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    directory = _directory(args, args.directory)
    calendar = _load(directory)
    if calendar is None:
        return 1
    spec = calendar.spec
    first, last = Calendar.statutory_years()
    print(
        f"ok: {directory} — {spec.timezone}, hours {spec.hours_text}, "
        f"{len(spec.extra_holidays)} extra holidays, {len(spec.extra_workdays)} extra workdays; "
        f"法定节假日数据 {first}–{last}"
    )
    return 0


def cmd_ladders(args: argparse.Namespace) -> int:
    """Validate the escalation ladders and show each level as sales ops would read it."""
    from reminders.ladders import LadderError, load_ladders

    directory = args.directory
    if directory is None:
        from bot.config import load_config

        directory = load_config(args.config).timers.ladders_dir or None
    try:
        ladders = load_ladders(directory)
    except LadderError as exc:
        print("升级规则有误 / ladders are invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"ok: {ladders.source} — {len(ladders.ladders)} ladders")
    for ladder in ladders.ladders:
        print(f"  {ladder.id} ({ladder.clock}):")
        for level in ladder.levels:
            extra = "".join(
                part
                for part in (
                    f", at {level.send_at:%H:%M} on a working day" if level.send_at else "",
                    f", when {level.when.text}" if level.when is not None else "",
                    f", {level.action}" if level.action != "remind" else "",
                )
            )
            print(f"    {level.number}. after {format_duration(level.at)} → {', '.join(level.audience)}{extra}")
    return 0


def _runs(days: list[DayInfo]) -> list[str]:
    """Consecutive days of the same special kind and holiday, as "10-01..10-07 * 国庆节"."""
    lines: list[str] = []
    run: list[DayInfo] = []
    for info in [*days, None]:
        if run and (info is None or (info.kind, info.holiday) != (run[0].kind, run[0].holiday)
                    or info.day.toordinal() != run[-1].day.toordinal() + 1):
            first, last = run[0].day, run[-1].day
            span = first.strftime("%m-%d") + ("" if first == last else ".." + last.strftime("%m-%d"))
            lines.append(f"  {span} {MARKS[run[0].kind]} {run[0].kind}" + (f" {run[0].holiday}" if run[0].holiday else ""))
            run = []
        if info is not None and info.kind not in ("workday", "weekend"):
            run.append(info)
    return lines


def render_month(calendar: Calendar, year: int, month: int) -> str:
    """The month grid as ``genjin calendar show`` prints it."""
    weeks = month_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
    lines = [f"{year}年{month}月  ({calendar.spec.timezone}, 工作时间 {calendar.spec.hours_text})",
             " Mon Tue Wed Thu Fri Sat Sun"]
    days: list[DayInfo] = []
    for week in weeks:
        cells = []
        for day in week:
            if day.month != month:
                cells.append("    ")
                continue
            info = calendar.day_info(day)
            days.append(info)
            cells.append(f"{day.day:>3}{MARKS[info.kind]}")
        lines.append("".join(cells).rstrip())
    working = sum(info.working for info in days)
    lines.append(f"工作日 working days: {working} / {len(days)}")
    special = _runs(days)
    if special:
        lines.append("特殊日期 special days:")
        lines.extend(special)
    if calendar.fallback_years_used:
        years = ", ".join(str(y) for y in sorted(calendar.fallback_years_used))
        lines.append(f"注意: {years} 不在法定节假日数据内，按周一至周五 + TOML 计算 (fallback: Mon–Fri)")
    lines.append(LEGEND)
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    match = _MONTH.match(args.month)
    if not match or not 1 <= int(match.group(2)) <= 12:
        print(f"error: MONTH: expected YYYY-MM, e.g. 2026-10 (got {args.month!r})", file=sys.stderr)
        return 2
    calendar = _load(_directory(args))
    if calendar is None:
        return 1
    print(render_month(calendar, int(match.group(1)), int(match.group(2))))
    return 0


def register_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cal = sub.add_parser("calendar", help="sales calendar: due moments, check, month view").add_subparsers(
        dest="calendar_command", required=True
    )
    p = cal.add_parser("due", help="when a duration started at START runs out (ISO 8601 with offset)")
    p.add_argument("start", metavar="START", help="ISO local time, e.g. 2026-03-13T17:50 (naive = calendar zone)")
    p.add_argument("duration", metavar="DURATION", help="e.g. 15m, 2h, 72h, 15d")
    p.add_argument("--clock", choices=[c.value for c in Clock], default=Clock.BUSINESS.value)
    p.add_argument("--hours", default=None, metavar="SEGMENTS", help='working hours, e.g. "09:00-12:00,13:30-18:00"')
    p.add_argument("--send-at", default=None, metavar="HH:MM", help="then the first working day at/after, at this time")
    p.add_argument("--dir", default=None, help="calendar directory (default: [calendar] dir, else the packaged one)")
    p.set_defaults(func=cmd_due)

    p = cal.add_parser("check", help="validate the calendar TOML (exit 1 naming file/key/problem)")
    p.add_argument("directory", nargs="?", default=None, metavar="DIR")
    p.set_defaults(func=cmd_check)

    p = cal.add_parser("ladders", help="validate the escalation ladders TOML and list their levels")
    p.add_argument("directory", nargs="?", default=None, metavar="DIR")
    p.set_defaults(func=cmd_ladders)

    p = cal.add_parser("show", help="print a month with days off and make-up workdays marked")
    p.add_argument("month", metavar="YYYY-MM")
    p.add_argument("--dir", default=None)
    p.set_defaults(func=cmd_show)


__all__ = ["register_commands", "render_month"]
