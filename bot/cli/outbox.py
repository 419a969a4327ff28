"""``genjin outbox …``: look after replies that could not be delivered."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timezone

from bot.config import Config


def _since(value: str) -> datetime:
    """ISO date or datetime; naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {value!r} (e.g. 2026-11-23 or 2026-11-23T09:00+08:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


async def _retry(config: Config, since: datetime | None) -> int:
    from bot.app import build_runtime
    from bot.pipeline.outbox import requeue_failed

    runtime = build_runtime(config)
    try:
        await runtime.start(http=False, workers=False)
        return await requeue_failed(runtime.app, since)
    finally:
        await runtime.stop()


def cmd_retry(args: argparse.Namespace) -> int:
    from bot.cli import _config, configure_logging

    config = _config(args)
    configure_logging("WARNING", config.logging.format)
    count = asyncio.run(_retry(config, args.since))
    print(f"re-queued {count} failed outbound message(s); a running server delivers them")
    return 0


def register_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    outbox = sub.add_parser("outbox", help="undelivered replies").add_subparsers(dest="outbox_command", required=True)
    p = outbox.add_parser("retry", help="re-queue failed outbound messages (after an outage or a config fix)")
    p.add_argument("--since", type=_since, default=None, help="only rows created at/after this ISO date/time")
    p.set_defaults(func=cmd_retry)
