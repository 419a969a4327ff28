"""The WeCom API client against the emulator: tokens, errors, media, robots, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.channels.wecom_client import SlidingWindowLimiter, WeComApiError, WeComClient, WeComTransportError
from tests.emulators.wecom import VOICE_AMR, WeComEmulator


@pytest.fixture
async def emu() -> AsyncIterator[WeComEmulator]:
    async with WeComEmulator(users={"ZhangWei", "LiNa"}) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: WeComEmulator) -> AsyncIterator[WeComClient]:
    c = WeComClient(emu.base_url, emu.corp_id, emu.secret, timeout=5)
    await c.start()
    yield c
    await c.close()


def text(to: str, content: str, agent: str = "1000002") -> dict[str, object]:
    return {"touser": to, "agentid": int(agent), "msgtype": "text", "text": {"content": content}}


async def test_token_is_cached_and_shared_by_concurrent_callers(emu: WeComEmulator, client: WeComClient) -> None:
    tokens = await asyncio.gather(*(client.access_token() for _ in range(20)))
    assert len(set(tokens)) == 1 and emu.gettoken_calls == 1
    await asyncio.gather(*(client.send_message(text("ZhangWei", f"第{i}条")) for i in range(5)))
    assert emu.gettoken_calls == 1 and len(emu.sent) == 5


async def test_token_refreshed_before_expiry(emu: WeComEmulator) -> None:
    emu.token_ttl = 1.0  # margin is at most 10% of expires_in → refresh after ~0.9 s
    c = WeComClient(emu.base_url, emu.corp_id, emu.secret, refresh_margin=300)
    await c.start()
    try:
        first = await c.access_token()
        assert await c.access_token() == first
        await asyncio.sleep(0.95)
        second = await c.access_token()
        assert second != first and emu.gettoken_calls == 2
        await c.send_message(text("ZhangWei", "刷新后"))
        assert [call.errcode for call in emu.calls_to("/cgi-bin/message/send")] == [0]
    finally:
        await c.close()


@pytest.mark.parametrize("how", ["expire", "revoke"])
async def test_stale_token_is_refreshed_once_and_the_call_retried(emu: WeComEmulator, client: WeComClient, how: str) -> None:
    await client.send_message(text("ZhangWei", "一"))
    emu.expire_tokens() if how == "expire" else emu.revoke_tokens()
    await asyncio.gather(*(client.send_message(text("ZhangWei", f"二{i}")) for i in range(3)))
    codes = [c.errcode for c in emu.calls_to("/cgi-bin/message/send")]
    stale = 42001 if how == "expire" else 40014
    assert codes.count(0) == 4 and set(codes) <= {0, stale}
    assert emu.gettoken_calls == 2  # one shared refresh, not one per caller


async def test_token_error_twice_is_raised(emu: WeComEmulator, client: WeComClient) -> None:
    emu.fail_next(2, errcode=42001, path="/cgi-bin/message/send")
    with pytest.raises(WeComApiError) as info:
        await client.send_message(text("ZhangWei", "x"))
    assert info.value.errcode == 42001 and emu.gettoken_calls == 2


async def test_bad_secret_is_an_api_error_from_gettoken(emu: WeComEmulator) -> None:
    c = WeComClient(emu.base_url, emu.corp_id, "wrong-secret")
    await c.start()
    try:
        with pytest.raises(WeComApiError) as info:
            await c.send_message(text("ZhangWei", "x"))
        assert info.value.errcode == 40001 and info.value.path == "/cgi-bin/gettoken"
    finally:
        await c.close()


async def test_errors_5xx_and_network(emu: WeComEmulator, client: WeComClient) -> None:
    emu.fail_next(1, status=502)
    with pytest.raises(WeComTransportError, match="502"):
        await client.send_message(text("ZhangWei", "x"))
    emu.fail_next(1, errcode=45009)
    with pytest.raises(WeComApiError) as info:
        await client.send_message(text("ZhangWei", "x"))
    assert info.value.errcode == 45009
    with pytest.raises(WeComApiError) as info:
        await client.send_message(text("Nobody", "x"))
    assert info.value.errcode == 81013
    dead = WeComClient("http://127.0.0.1:9", "c", "s", timeout=2)
    await dead.start()
    try:
        with pytest.raises(WeComTransportError):
            await dead.access_token()
    finally:
        await dead.close()


async def test_media_download_and_json_errors(emu: WeComEmulator, client: WeComClient) -> None:
    media_id = emu.add_voice()
    media = await client.get_media(media_id)
    assert media.data == VOICE_AMR.read_bytes() and media.content_type == "audio/amr"
    assert media.filename.endswith(".amr")
    with pytest.raises(WeComApiError) as info:
        await client.get_media("no-such-media")
    assert info.value.errcode == 40007
    emu.revoke_tokens()
    assert (await client.get_media(media_id)).data.startswith(b"#!AMR\n")  # refreshed and retried


async def test_robot_webhook(emu: WeComEmulator, client: WeComClient) -> None:
    await client.robot_send("robot-key-east", {"msgtype": "markdown", "markdown": {"content": "**周报**"}})
    assert emu.robot_sent == [("robot-key-east", {"msgtype": "markdown", "markdown": {"content": "**周报**"}})]
    with pytest.raises(WeComApiError) as info:
        await client.robot_send("unknown", {"msgtype": "text", "text": {"content": "x"}})
    assert info.value.errcode == 93000


def test_sliding_window_limiter() -> None:
    now = [100.0]
    limiter = SlidingWindowLimiter(3, 60, now=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("b") == 0.0  # per key
    now[0] = 130.0
    assert limiter.acquire("a") == pytest.approx(30.0)
    now[0] = 160.0  # the three events of t=100 have left the window
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(60.0)
