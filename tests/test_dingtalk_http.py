"""DingTalk HTTP callback mode: signed callbacks are stored, anything else is refused first.

A real Runtime serves the callback route on 127.0.0.1; the clock is set to DingTalk's
documented signature vector so the vector itself is posted and accepted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.channels.dingtalk_parse import sign
from bot.clock import FakeClock
from bot.context import AppContext
from bot.runtime import Runtime
from storage.models import InboxRow
from tests.conftest import RuntimeFactory
from tests.emulators.dingtalk import DingTalkEmulator

VECTOR_TS = "1577262236757"
VECTOR_SECRET = "this is a secret"
VECTOR_SIGN = "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="
PATH = "/dingtalk/callback"


@pytest.fixture
async def emu() -> AsyncIterator[DingTalkEmulator]:
    emulator = await DingTalkEmulator(app_secret=VECTOR_SECRET).start()
    yield emulator
    await emulator.stop()


def vector_clock(offset: timedelta = timedelta(seconds=3)) -> FakeClock:
    return FakeClock(datetime.fromtimestamp(int(VECTOR_TS) / 1000, tz=timezone.utc) + offset)


async def http_runtime(make_runtime: RuntimeFactory, emu: DingTalkEmulator, clock: FakeClock, **kw: bool) -> Runtime:
    overrides = {"dingtalk": emu.config(mode="http"), "server": {"host": "127.0.0.1", "port": 0, "max_body_bytes": 4096}}
    return await make_runtime(overrides, clock=clock, http=True, **kw)


async def post(
    runtime: Runtime, body: bytes, *, timestamp: str | None = VECTOR_TS, signature: str | None = VECTOR_SIGN
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if timestamp is not None:
        headers["timestamp"] = timestamp
    if signature is not None:
        headers["sign"] = signature
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{runtime.port}{PATH}", data=body, headers=headers) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text.startswith("{") else {"raw": text})


async def count_rows(app: AppContext) -> int:
    async with app.sessions() as session:
        return int(await session.scalar(select(func.count(InboxRow.id))) or 0)


def encode(data: dict[str, object]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


async def test_vector_signed_callback_is_stored_once_and_answered(emu: DingTalkEmulator, make_runtime: RuntimeFactory) -> None:
    runtime = await http_runtime(make_runtime, emu, vector_clock(), workers=True)
    data = emu.bot_message("rep-001", text="今天拜访华山医院王主任")
    status, answer = await post(runtime, encode(data))
    assert (status, answer) == (200, {"ok": True, "duplicate": False})
    status, answer = await post(runtime, encode(data))  # DingTalk retries a callback it thinks failed
    assert (status, answer) == (200, {"ok": True, "duplicate": True})
    assert await count_rows(runtime.app) == 1
    await emu.wait_for(lambda: bool(emu.session_messages()))
    [reply] = emu.accepted("/robot/sendBySession")
    assert reply.query["session"] == data["sessionWebhook"].split("session=")[1]


@pytest.mark.parametrize(
    ("timestamp", "signature", "clock_offset"),
    [
        (VECTOR_TS, "X" + VECTOR_SIGN[1:], timedelta(seconds=3)),  # forged
        (VECTOR_TS, sign(VECTOR_TS, "another secret"), timedelta(seconds=3)),  # another app's secret
        (VECTOR_TS, VECTOR_SIGN, timedelta(hours=1, seconds=1)),  # replayed an hour later
        (VECTOR_TS, VECTOR_SIGN, -timedelta(hours=1, seconds=1)),  # from the future
        (None, VECTOR_SIGN, timedelta(0)),
        (VECTOR_TS, None, timedelta(0)),
        ("not-a-number", VECTOR_SIGN, timedelta(0)),
    ],
)
async def test_bad_or_stale_signatures_are_refused_before_storing(
    emu: DingTalkEmulator,
    make_runtime: RuntimeFactory,
    timestamp: str | None,
    signature: str | None,
    clock_offset: timedelta,
) -> None:
    runtime = await http_runtime(make_runtime, emu, vector_clock(clock_offset))
    status, answer = await post(runtime, encode(emu.bot_message("rep-001", text="伪造")), timestamp=timestamp, signature=signature)
    assert status == 403 and answer == {"ok": False, "error": "forbidden"}
    assert await count_rows(runtime.app) == 0
    assert runtime.app.metrics.rejected.labels("dingtalk", "signature")._value.get() == 1  # noqa: SLF001


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (json.dumps({"msgtype": "text", "text": {"content": "x"}}).encode(), 400),  # no msgId
        (json.dumps({"msgId": "m1", "msgtype": "text", "senderStaffId": "rep-001", "text": "x"}).encode(), 400),
        (b'{"pad": "' + b"x" * 5000 + b'"}', 413),
    ],
)
async def test_malformed_or_oversized_bodies_get_a_clear_4xx(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory, body: bytes, status: int
) -> None:
    runtime = await http_runtime(make_runtime, emu, vector_clock())
    got, answer = await post(runtime, body)
    assert got == status and answer.get("ok") is False
    assert await count_rows(runtime.app) == 0


async def test_group_message_without_mention_is_acknowledged_not_stored(
    emu: DingTalkEmulator, make_runtime: RuntimeFactory
) -> None:
    runtime = await http_runtime(make_runtime, emu, vector_clock())
    status, answer = await post(runtime, encode(emu.bot_message("rep-001", text="聊天", group=True, at_bot=False)))
    assert (status, answer) == (200, {"ok": True, "ignored": True})
    assert await count_rows(runtime.app) == 0
