"""Signed, short-lived, one-use dashboard links, and the session value they become.

A link carries ``person id · nonce · expiry`` and an HMAC-SHA256 over them with the
``[dashboard] secret``. The nonce is stored (``dashboard_links``) and consumed with a
conditional UPDATE, so a link opens exactly one session across all nodes. The session is
a cookie with the same kind of signature and a longer expiry. Nothing here speaks HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DashboardLink


class LinkError(Exception):
    """Why a link or session is refused (shown to the person in Chinese)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, claims: dict[str, object]) -> str:
    if not secret:
        raise LinkError("看板未配置密钥（[dashboard] secret）")
    body = _b64(json.dumps({**claims, "p": purpose}, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: str, purpose: str, token: str, now: datetime) -> dict[str, object]:
    if not secret:
        raise LinkError("看板未配置密钥")
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise LinkError("链接无效")
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise LinkError("链接无效") from exc
    if not isinstance(claims, dict) or claims.get("p") != purpose:
        raise LinkError("链接无效")
    if int(claims.get("e", 0)) < int(now.timestamp()):
        raise LinkError("链接已过期，请在聊天里重新发 #看板")
    return claims


@dataclass(frozen=True)
class Issued:
    token: str
    nonce: str
    expires_at: datetime


async def issue_link(session: AsyncSession, secret: str, person_id: int, now: datetime, minutes: float) -> Issued:
    """A new one-use link for ``person_id`` (its nonce is stored in the caller's transaction)."""
    nonce = secrets.token_urlsafe(18)
    expires = now + timedelta(minutes=minutes)
    session.add(DashboardLink(nonce=nonce, person_id=person_id, expires_at=expires, created_at=now))
    token = sign(secret, "link", {"u": person_id, "n": nonce, "e": int(expires.timestamp())})
    return Issued(token, nonce, expires)


async def redeem_link(session: AsyncSession, secret: str, token: str, now: datetime) -> int:
    """The person id a valid, unused link stands for; the link is used up (one use across nodes)."""
    claims = verify(secret, "link", token, now)
    used = await session.execute(
        update(DashboardLink)
        .where(DashboardLink.nonce == str(claims.get("n")), DashboardLink.person_id == int(claims["u"]),  # type: ignore[arg-type]
               DashboardLink.used_at.is_(None), DashboardLink.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkError("链接已使用过，请在聊天里重新发 #看板")
    return int(claims["u"])  # type: ignore[arg-type]


def session_value(secret: str, person_id: int, now: datetime, hours: float) -> str:
    return sign(secret, "session", {"u": person_id, "e": int((now + timedelta(hours=hours)).timestamp())})


def session_person(secret: str, value: str, now: datetime) -> int:
    return int(verify(secret, "session", value, now)["u"])  # type: ignore[arg-type]
