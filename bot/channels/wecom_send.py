"""What the WeCom app channel and the group-robot channel share when sending.

Both send a reply as one or more messages, under a local per-recipient rate limit, and
both must resume a half-sent reply where it stopped instead of repeating the start.
:func:`send_parts` is that loop, written once; the channels only say how to post one
body. :func:`classify` turns WeCom's errors into what the outbox should do.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from bot.channels.base import (
    ChannelHealth,
    DeliveryError,
    PermanentFailure,
    TemporaryFailure,
)
from bot.channels.wecom_client import (
    GETTOKEN,
    TOKEN_ERRORS,
    SlidingWindowLimiter,
    WeComApiError,
    WeComTransportError,
)
from bot.messages import Outbound
from cards.render_wecom import split_markdown, wecom_task_id
from cards.textutil import escape_text_tags

TEXT_MAX_BYTES = 2048

#: errcodes that mean "later": system busy, API frequency limits.
RETRYABLE = frozenset({-1, 45009, 45033, 45011})
#: "invalid parameter" — for a template card: the task_id was used before.
TASK_ID_TAKEN = 40058
#: gettoken errors that only an administrator can fix.
CREDENTIAL_ERRORS = frozenset({40001, 40013, 40091, 41002, 41004})
IP_NOT_TRUSTED = 60020
_FROM_IP = re.compile(r"from ip:?\s*([0-9a-fA-F.:]+)")

#: Posts one message body; returns WeCom's answer.
Post = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
#: Inspects a successful answer; raises PermanentFailure when it hides a failure.
Check = Callable[[dict[str, Any]], None]


def text_messages(text: str, limit: int = TEXT_MAX_BYTES) -> list[dict[str, Any]]:
    """Text message bodies, with tags made inert: a rep's words must not become a link."""
    return [{"msgtype": "text", "text": {"content": part}} for part in split_markdown(escape_text_tags(text), limit)]


class TaskIds:
    """Template-card task_ids: unique across databases and recipients, stable across retries.

    WeCom refuses a task_id it has seen before (40058) for the app's lifetime. Outbox ids
    restart after a database reset and the same card goes to many people, so an id built
    from them alone repeats; a random nonce per outbox row does not. The nonce is kept (in
    memory, bounded) so a retry re-sends the same id; after a restart a retry gets a new
    one, which at worst shows the card twice. On 40058 the caller asks for a new one.
    """

    def __init__(self, prefix: str, limit: int = 10_000) -> None:
        self._prefix = prefix
        self._nonces: OrderedDict[int, str] = OrderedDict()
        self._limit = limit

    def get(self, out: Outbound) -> str:
        nonce = self._nonces.get(out.id)
        return self._format(out, nonce) if nonce is not None else self.renew(out)

    def renew(self, out: Outbound) -> str:
        self._nonces[out.id] = secrets.token_hex(8)
        self._nonces.move_to_end(out.id)
        while len(self._nonces) > self._limit:
            self._nonces.popitem(last=False)
        return self._format(out, self._nonces[out.id])

    def _format(self, out: Outbound, nonce: str) -> str:
        return wecom_task_id(f"{self._prefix}_{out.id}_{nonce}")


def _ip_hint(errmsg: str) -> str:
    match = _FROM_IP.search(errmsg)
    return match.group(1) if match else ""


class Progress:
    """Which parts of a multi-message reply already went out, so a retry resends only the rest.

    In memory only: after a restart a retry may repeat earlier parts (duplicates, never loss).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._done: OrderedDict[int, int] = OrderedDict()
        self._limit = limit

    def get(self, outbox_id: int) -> int:
        return self._done.get(outbox_id, 0)

    def set(self, outbox_id: int, parts: int) -> None:
        self._done[outbox_id] = parts
        self._done.move_to_end(outbox_id)
        while len(self._done) > self._limit:
            self._done.popitem(last=False)

    def forget(self, outbox_id: int) -> None:
        self._done.pop(outbox_id, None)


class ApiHealth:
    """Remembers the last configuration problem (60020, bad secret) until a call succeeds."""

    def __init__(self) -> None:
        self.problem = ""
        self.errcode = 0

    def failed(self, errcode: int, problem: str) -> None:
        self.problem, self.errcode = problem, errcode

    def succeeded(self) -> None:
        self.problem, self.errcode = "", 0

    def report(self, detail: str) -> ChannelHealth:
        if self.problem:
            return ChannelHealth(ok=False, detail=self.problem, extra={"errcode": self.errcode})
        return ChannelHealth(ok=True, detail=detail)


def classify(exc: WeComApiError | WeComTransportError, health: ApiHealth, log: Any, where: str) -> DeliveryError:
    """Turn a client error into what the outbox should do (and remember config problems)."""
    if isinstance(exc, WeComTransportError):
        return TemporaryFailure(f"WeCom unreachable: {exc.reason}")
    code, msg = exc.errcode, exc.errmsg
    if code == IP_NOT_TRUSTED:
        ip = _ip_hint(msg) or "this server's public IP"
        problem = (
            f"WeCom refuses calls from {ip} (errcode 60020): add {ip} to the app's trusted IPs — "
            f"admin console 管理后台 → 应用管理 → {where} → 企业可信IP — then resend the failed messages"
        )
        log.error("wecom.ip_not_trusted", ip=ip, errmsg=msg)
        health.failed(code, problem)
        return PermanentFailure(problem)
    if code in RETRYABLE:
        return TemporaryFailure(f"WeCom busy or rate-limited (errcode {code}: {msg})")
    if exc.path == GETTOKEN and code in CREDENTIAL_ERRORS:
        problem = f"WeCom gettoken failed (errcode {code}: {msg}): check [wecom] corp_id and secret (GENJIN_WECOM_SECRET)"
        log.error("wecom.credentials", errcode=code, errmsg=msg)
        health.failed(code, problem)
        return PermanentFailure(problem)
    if code in TOKEN_ERRORS:
        return TemporaryFailure(f"WeCom access token rejected twice (errcode {code}: {msg})")
    return PermanentFailure(f"WeCom errcode {code}: {msg}")


class PartSender:
    """Sends the bodies of one reply in order, resuming after the last part that went out."""

    def __init__(self, limiter: SlidingWindowLimiter, health: ApiHealth, log: Any, where: str) -> None:
        self.limiter = limiter
        self.progress = Progress()
        self._health = health
        self._log = log
        self._where = where

    def failure(self, exc: WeComApiError | WeComTransportError) -> DeliveryError:
        return classify(exc, self._health, self._log, self._where)

    async def send(
        self,
        outbox_id: int,
        bodies: Sequence[dict[str, Any]],
        limit_key: str,
        post: Post,
        check: Check | None = None,
        *,
        limit_label: str = "",
    ) -> None:
        """Post ``bodies[progress:]``; a permanent failure forgets the progress, a temporary one keeps it.

        ``limit_label`` names the rate-limited party in the error text (a robot key is a secret).
        """
        if not bodies:
            raise PermanentFailure("empty reply")
        for index in range(self.progress.get(outbox_id), len(bodies)):
            wait = self.limiter.acquire(limit_key)
            if wait:
                label = limit_label or f"to {limit_key}"
                raise TemporaryFailure(f"local limit of {self.limiter.limit} messages/min {label}", retry_after=wait)
            try:
                data = await post(bodies[index])
            except (WeComApiError, WeComTransportError) as exc:
                self._fail(outbox_id, self.failure(exc))
            self._health.succeeded()
            if check is not None:
                try:
                    check(data)
                except PermanentFailure as failure:
                    self._fail(outbox_id, failure)
            self.progress.set(outbox_id, index + 1)
        self.progress.forget(outbox_id)

    def _fail(self, outbox_id: int, failure: DeliveryError) -> NoReturn:
        if isinstance(failure, PermanentFailure):
            self.progress.forget(outbox_id)
        raise failure from None
