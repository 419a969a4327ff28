"""``genjin chat``: be a person from the org and talk to the bot in the terminal.

Each line is one message (``/voice PATH`` sends an audio file as a voice memo). Lines
can be piped for scripting; after each line the chat waits until the message is
processed and its replies delivered, so the output is deterministic. Everything goes
through the same inbox → dispatcher → outbox path as WeCom and DingTalk.

In the demo two more lines make a whole story scriptable: ``/as KEY`` speaks as another
person of the org, and ``/clock +20m`` moves the demo's clock forward, runs the due jobs
(reminders, timers) and prints what they pushed — a lead arrives, the rep ignores it,
the reminder, the reassignment, the manager's card.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select

from bot.channels.local import LocalChannel
from bot.clock import OffsetClock
from bot.context import AppContext
from bot.messages import Inbound, Kind, Outbound, held_conversation
from bot.pipeline.inbox import accept
from reminders.calendar import parse_duration
from storage.models import InboxRow, OutboxRow, Person

WAIT_SECONDS = 300.0


@dataclass
class DemoControls:
    """What ``/clock`` needs: the demo's clock and a way to run the due jobs now."""

    clock: OffsetClock
    run_jobs: Callable[[], Awaitable[None]]


class Console:
    """Prints what the local channel delivers: replies plainly, pushes to others with →."""

    def __init__(self, user: str, names: dict[str, str], out: TextIO) -> None:
        self.user = user
        self.names = names
        self.out = out

    def __call__(self, msg: Outbound, text: str) -> None:
        if msg.recipient == self.user:
            print(text, file=self.out)
        else:
            name = self.names.get(msg.recipient, msg.recipient)
            body = text.replace("\n", "\n    ")
            print(f"→ {name}: {body}", file=self.out)
        print("", file=self.out, flush=True)


async def _names(app: AppContext) -> dict[str, str]:
    async with app.sessions() as session:
        return {key: name for key, name in (await session.execute(select(Person.key, Person.name))).all()}


def parse_line(user: str, line: str, session: str = "") -> Inbound | str:
    """A chat line → an inbound message, or an error string to show.

    ``session`` marks the conversation as held by this process, so that a ``genjin serve``
    on the same database processes it (any node may) but never delivers its replies.
    """
    text = line.strip()
    now = datetime.now(timezone.utc)
    base = dict(platform="local", message_id=uuid.uuid4().hex, sender=user,
                conversation=held_conversation(user, session), sent_at=now)
    if text.startswith("/voice"):
        path = text[len("/voice") :].strip()
        if not path:
            return "用法：/voice 音频文件路径"
        file = Path(path).expanduser()
        if not file.is_file():
            return f"找不到文件：{file}"
        return Inbound(kind=Kind.VOICE, media=str(file.resolve()), media_format=file.suffix.lstrip(".").lower(), **base)
    return Inbound(kind=Kind.TEXT, text=text, **base)


async def wait_settled(app: AppContext, inbox_id: int, timeout: float = WAIT_SECONDS) -> bool:
    """Wait until the inbox row is processed and every outbox row it produced is final."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with app.sessions() as session:
            status = await session.scalar(select(InboxRow.status).where(InboxRow.id == inbox_id))
            pending = await session.scalar(
                select(func.count(OutboxRow.id)).where(
                    OutboxRow.inbox_id == inbox_id, OutboxRow.status.in_(("pending", "sending"))
                )
            )
        if status in ("done", "failed") and not pending:
            return True
        await asyncio.sleep(0.02)
    return False


async def wait_idle(app: AppContext, timeout: float = WAIT_SECONDS) -> bool:
    """Wait until running workers have nothing left: no inbox row unfinished, no outbox row in flight or due.

    The condition, not a sleep: once the pipeline is idle, nothing more is sent without new
    input (pushes from jobs have no inbox row, so the outbox is checked on its own).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with app.sessions() as session:
            unfinished = await session.scalar(
                select(func.count(InboxRow.id)).where(InboxRow.status.in_(("pending", "processing")))
            )
            due = await session.scalar(
                select(func.count(OutboxRow.id)).where(
                    OutboxRow.status.in_(("pending", "sending")), OutboxRow.next_attempt_at <= app.clock.now()
                )
            )
        if not unfinished and not due:
            return True
        app.inbox_wakeup.set()
        app.outbox_wakeup.set()
        await asyncio.sleep(0.01)
    return False


def _local(moment: datetime, app: AppContext) -> str:
    local = moment.astimezone(app.config.tz)
    return f"{local:%Y-%m-%d %H:%M} 周{'一二三四五六日'[local.weekday()]}"


async def _demo_line(app: AppContext, text: str, console: Console, names: dict[str, str], demo: DemoControls | None) -> str | None:
    """Handle ``/as`` and ``/clock``; returns what to print, or None when the line is a message."""
    if not (text.startswith("/as") or text.startswith("/clock")):
        return None
    if demo is None:
        return "/as 和 /clock 只在演示（genjin demo）里可用。"
    if text.startswith("/as"):
        key = text[len("/as") :].strip()
        if key not in names:
            return f"组织里没有 {key or '（空）'}。可选：{'、'.join(sorted(names))}"
        console.user = key
        return f"你现在是 {names[key]}（{key}）。"
    arg = text[len("/clock") :].strip()
    if arg:
        try:
            delta = parse_duration(arg.lstrip("+"))
        except ValueError:
            return "用法：/clock +20m（也可以 +2h、+3d）"
        demo.clock.advance(delta)
        await demo.run_jobs()
        if not await wait_idle(app):
            return "（处理超时，稍后会继续投递）"
    return f"⏱ 现在是 {_local(app.clock.now(), app)}" + await _held(app)


async def _held(app: AppContext) -> str:
    """Alerts waiting for their merge window or the next opening: say when they will arrive."""
    async with app.sessions() as session:
        count, first = (
            await session.execute(
                select(func.count(OutboxRow.id), func.min(OutboxRow.next_attempt_at)).where(
                    OutboxRow.status == "pending", OutboxRow.merge_key.is_not(None),
                    OutboxRow.next_attempt_at > app.clock.now(),
                )
            )
        ).one()
    if not count:
        return ""
    return f"（另有 {count} 张提醒卡片在合并等待中，最早 {_local(first, app)[11:16]} 送达）"


async def run_chat(
    app: AppContext,
    user: str,
    stdin: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    demo: DemoControls | None = None,
) -> int:
    channel = app.channels.get("local")
    if not isinstance(channel, LocalChannel):
        print("本地聊天通道未启用（[local] enabled = false）", file=sys.stderr)
        return 2
    names = await _names(app)
    if user not in names:
        print(f"注意：{user} 不在组织架构中，消息会按未登记用户处理。", file=out)
    console = Console(user, names, out)
    session = channel.holder or channel.hold(uuid.uuid4().hex[:12])  # replies to this terminal come here only
    channel.add_listener(console)
    interactive = stdin.isatty()
    loop = asyncio.get_running_loop()
    if interactive:
        extra = "，/as 人员 换人说话，/clock +20m 让时间前进" if demo is not None else ""
        print(f"你现在是 {names.get(user, user)}（{user}）。输入消息回车发送，/voice 路径 发送语音{extra}，Ctrl-D 退出。", file=out)
    try:
        while True:
            if interactive:
                print("> ", end="", file=out, flush=True)
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            said = await _demo_line(app, line.strip(), console, names, demo)
            if said is not None:
                print(said, file=out, flush=True)
                continue
            parsed = parse_line(console.user, line, session)
            if isinstance(parsed, str):
                print(parsed, file=out, flush=True)
                continue
            result = await accept(app, parsed)
            if result.inbox_id is not None and not await wait_settled(app, result.inbox_id):
                print("（处理超时，稍后会继续投递）", file=out, flush=True)
    finally:
        channel.remove_listener(console)
    return 0
