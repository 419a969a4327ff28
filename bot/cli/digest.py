"""``genjin digest preview`` and ``genjin dashboard link``: the weekly digest and dashboard links by hand."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

from bot.config import Config


def _week(value: str) -> date:
    """"2026-W49" → the Monday of that ISO week."""
    try:
        year, week = value.upper().split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO week: {value!r} (e.g. 2026-W49)") from None


async def _preview(config: Config, user: str, week: date | None, out: Path) -> list[Path]:
    from bot.app import build_runtime
    from bot.clock import FakeClock
    from cards.render_text import render_text
    from handlers.reports.digest import build_digest
    from storage.people import person_by_key

    clock = None
    if week is not None:  # the digest about that week is the one sent on the next week's first working day
        clock = FakeClock(datetime.combine(week + timedelta(days=7), time(9, 0), tzinfo=config.tz))
    runtime = build_runtime(config, clock=clock)
    try:
        await runtime.start(http=False, workers=False)
        app = runtime.app
        async with app.sessions() as session:
            person = await person_by_key(session, user)
            if person is None:
                raise SystemExit(f"unknown person {user!r}")
            digest = await build_digest(app, session, person, app.clock.now())
    finally:
        await runtime.stop()
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"digest-{digest.week}-{user}.txt"]
    written[0].write_text(render_text(digest.card) + "\n", encoding="utf-8")
    for image in digest.images:
        path = out / image.name
        path.write_bytes(image.data)
        written.append(path)
    return written


def cmd_preview(args: argparse.Namespace) -> int:
    from bot.cli import _config, configure_logging

    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    for path in asyncio.run(_preview(config, args.user, args.week, Path(args.out))):
        print(path)
    return 0


async def _link(config: Config, user: str) -> str:
    from bot.app import build_runtime
    from handlers.reports.links import issue_link
    from storage.db import transaction
    from storage.people import person_by_key

    cfg = config.dashboard
    runtime = build_runtime(config)
    try:
        await runtime.start(http=False, workers=False)
        async with transaction(runtime.app.sessions) as session:
            person = await person_by_key(session, user)
            if person is None:
                raise SystemExit(f"unknown person {user!r}")
            issued = await issue_link(session, cfg.secret, person.id, runtime.app.clock.now(), cfg.link_minutes)
    finally:
        await runtime.stop()
    base = cfg.base_url.rstrip("/") or f"http://{config.server.host}:{config.server.port}"
    return f"{base}/dash/login?t={issued.token}"


def cmd_link(args: argparse.Namespace) -> int:
    from bot.cli import _config, configure_logging
    from handlers.reports.links import LinkError

    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    try:
        print(asyncio.run(_link(config, args.user)))
    except LinkError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def register_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    digest = sub.add_parser("digest", help="the weekly digest").add_subparsers(dest="digest_command", required=True)
    p = digest.add_parser("preview", help="write a person's digest (text + PNG charts) to a folder, sending nothing")
    p.add_argument("--user", required=True, help="the person's org key (a manager or director)")
    p.add_argument("--week", type=_week, default=None, help="the ISO week the digest is about (e.g. 2026-W49); default last week")
    p.add_argument("--out", default="digest-preview", help="folder to write to")
    p.set_defaults(func=cmd_preview)

    dash = sub.add_parser("dashboard", help="the web dashboard").add_subparsers(dest="dashboard_command", required=True)
    p = dash.add_parser("link", help="print a signed one-use dashboard link for a person")
    p.add_argument("--user", required=True)
    p.set_defaults(func=cmd_link)
