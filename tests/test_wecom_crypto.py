"""Published WeCom crypto vectors, checked with wechatpy and through Genjin's callback URL.

Vectors: wechatpy's own test suite (tests/test_crypto.py: token ``123456``) and the
official WeCom callback samples (WXBizMsgCrypt Sample: token ``QDG6eK``). If our
callback decrypts what WeCom itself published, it will decrypt WeCom's callbacks.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from bot.channels.wecom_parse import parse_xml
from storage.models import InboxRow
from tests.conftest import RuntimeFactory

WECHATPY = {
    "token": "123456",
    "encoding_aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "corp_id": "wx49f0ab532d5d035a",
}
WECHATPY_ECHO = {
    "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    "timestamp": "1411443780",
    "nonce": "437374425",
    "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
}
WECHATPY_MESSAGE = {
    "params": {"msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "timestamp": "1411525903", "nonce": "461056294"},
    "body": """<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>
<Encrypt><![CDATA[RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>
<AgentID><![CDATA[1]]></AgentID>
</xml>""",
}

OFFICIAL = {
    "token": "QDG6eK",
    "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp_id": "wx5823bf96d3bd56c7",
}
OFFICIAL_ECHO = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
OFFICIAL_ECHO_PLAIN = "1616140317555161061"
OFFICIAL_MESSAGE = {
    "params": {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813", "nonce": "1372623149"},
    "body": (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
        "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUk"
        "SUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekU"
        "NXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rU"
        "PA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+"
        "qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    ),
}


def test_wechatpy_vectors_decrypt() -> None:
    crypto = WeChatCrypto(**WECHATPY)
    echo = crypto.check_signature(*WECHATPY_ECHO.values())
    assert echo.isdigit()
    plain = parse_xml(crypto.decrypt_message(WECHATPY_MESSAGE["body"], *WECHATPY_MESSAGE["params"].values()))
    assert plain["Content"] == "test" and plain["FromUserName"] == "messense"
    wrong_nonce = dict(WECHATPY_ECHO, nonce="437374424")
    with pytest.raises(InvalidSignatureException):
        crypto.check_signature(*wrong_nonce.values())


def test_official_wecom_vectors_decrypt() -> None:
    crypto = WeChatCrypto(**OFFICIAL)
    assert crypto.check_signature(*OFFICIAL_ECHO.values()) == OFFICIAL_ECHO_PLAIN
    plain = parse_xml(crypto.decrypt_message(OFFICIAL_MESSAGE["body"], *OFFICIAL_MESSAGE["params"].values()))
    assert plain["FromUserName"] == "mycreate" and plain["Content"] == "hello"
    assert plain["MsgId"] == "4561255354251345929" and plain["AgentID"] == "218"


def _overrides(vector: dict[str, str]) -> dict[str, Any]:
    return {
        "wecom": {
            "enabled": True,
            "agent_id": "218",
            "secret": "unused",
            "api_base": "http://127.0.0.1:9",  # nothing is sent in these tests
            "callback_max_skew_seconds": 10**10,  # the published vectors carry their historic timestamps
            **vector,
        }
    }


async def _inbox(runtime) -> list[InboxRow]:  # type: ignore[no-untyped-def]
    async with runtime.app.sessions() as session:
        return list((await session.scalars(select(InboxRow))).all())


@pytest.mark.parametrize(
    ("vector", "echo", "message", "sender", "text", "msg_id"),
    [
        (OFFICIAL, OFFICIAL_ECHO, OFFICIAL_MESSAGE, "mycreate", "hello", "4561255354251345929"),
        (WECHATPY, WECHATPY_ECHO, WECHATPY_MESSAGE, "messense", "test", None),
    ],
    ids=["official", "wechatpy"],
)
async def test_published_vectors_through_the_callback_url(
    make_runtime: RuntimeFactory,
    vector: dict[str, str],
    echo: dict[str, str],
    message: dict[str, Any],
    sender: str,
    text: str,
    msg_id: str | None,
) -> None:
    runtime = await make_runtime(_overrides(vector), http=True)
    url = f"http://127.0.0.1:{runtime.port}/wecom/callback"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params=echo) as resp:
            body = await resp.read()
            assert resp.status == 200
        expected = WeChatCrypto(**vector).check_signature(*echo.values())
        assert body == expected.encode()  # the plaintext is the whole body: no quotes, no newline
        async with http.post(url, params=message["params"], data=message["body"].encode()) as resp:
            assert resp.status == 200 and await resp.text() == ""
    rows = await _inbox(runtime)
    assert len(rows) == 1
    assert (rows[0].platform, rows[0].sender, rows[0].text, rows[0].kind) == ("wecom", sender, text, "text")
    if msg_id is not None:
        assert rows[0].message_id == msg_id
