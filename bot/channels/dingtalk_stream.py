"""DingTalk Stream mode: a websocket the bot opens to DingTalk, so no public URL is needed.

The official ``dingtalk-stream`` SDK parses frames and builds acknowledgements
(``route_message`` → our handler → ack on the socket). Two parts of it are replaced:

* its ``start()`` loop calls ``requests`` (blocking the event loop while DingTalk
  answers) and always waits 10 s after a drop; we open the connection with aiohttp and
  reconnect with bounded exponential backoff and jitter, so a fleet of nodes does not
  reconnect in lock-step after an outage;
* its handler awaits ``process()`` before acking. Ours only stores the message in the
  inbox (a single INSERT) and returns: the slow work happens in the inbox workers,
  because DingTalk redelivers frames whose ack is late.

A frame is acknowledged only after the message is stored; if storing fails we answer
"system exception" so DingTalk delivers it again — nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote_plus

import websockets
from dingtalk_stream import ChatbotMessage, Credential, DingTalkStreamClient
from dingtalk_stream.frames import AckMessage, CallbackMessage
from dingtalk_stream.handlers import CallbackHandler
from dingtalk_stream.version import VERSION_STRING

from bot.channels.base import DeliveryError, PermanentFailure
from bot.channels.dingtalk_client import DingTalkClient
from bot.channels.dingtalk_parse import ParseError
from bot.config import DingTalkConfig

Ingest = Callable[[Any], Awaitable[object]]
UA = f"genjin dingtalk-sdk-python/v{VERSION_STRING}"
MAX_FRAME_BYTES = 4 * 1024 * 1024


class _SdkLog:
    """Routes the SDK's stdlib-style log calls into our structured log.

    The SDK warns "unknown message topic" for every keep-alive ping it (correctly)
    acknowledges; that is noise, so pings are logged at debug level.
    """

    def __init__(self, log: Any) -> None:
        self._log = log

    def _emit(self, level: str, msg: str, *args: object, **_: object) -> None:
        text = msg % args if args else msg
        if "topic=ping" in text:
            level = "debug"
        getattr(self._log, level)("dingtalk.sdk", detail=text[:500])

    def debug(self, msg: str, *args: object, **kw: object) -> None:
        self._emit("debug", msg, *args, **kw)

    def info(self, msg: str, *args: object, **kw: object) -> None:
        self._emit("debug", msg, *args, **kw)

    def warning(self, msg: str, *args: object, **kw: object) -> None:
        self._emit("warning", msg, *args, **kw)

    def error(self, msg: str, *args: object, **kw: object) -> None:
        self._emit("error", msg, *args, **kw)

    def exception(self, msg: str, *args: object, **kw: object) -> None:
        self._emit("error", msg, *args, **kw)


class BotMessageHandler(CallbackHandler):
    """The chatbot topic: store the message, then let the SDK ack the frame."""

    def __init__(self, ingest: Ingest, log: Any) -> None:
        super().__init__()
        self._ingest = ingest
        self._log = log

    async def process(self, message: CallbackMessage) -> tuple[int, str]:
        try:
            await self._ingest(message.data)
        except ParseError as exc:
            # Redelivering a malformed body will not make it well-formed: ack and log.
            self._log.warning("dingtalk.stream.unparseable", reason=exc.reason, frame=message.headers.message_id)
            return AckMessage.STATUS_OK, f"ignored: {exc.reason}"
        except Exception:  # noqa: BLE001 - not stored: make DingTalk deliver it again
            self._log.exception("dingtalk.stream.store_failed", frame=message.headers.message_id)
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "not stored, please redeliver"
        return AckMessage.STATUS_OK, "OK"


def backoff_delay(failures: int, low: float, high: float, rng: Callable[[], float] = random.random) -> float:
    """Bounded exponential backoff with "equal jitter": half fixed, half random."""
    ceiling = min(high, low * (2 ** min(failures, 30)))
    return ceiling / 2 + rng() * ceiling / 2


class StreamRunner:
    """Keeps one Stream connection open for the app until :meth:`stop`."""

    def __init__(self, cfg: DingTalkConfig, client: DingTalkClient, ingest: Ingest, log: Any) -> None:
        self._cfg = cfg
        self._client = client
        self._log = log
        self._sdk = DingTalkStreamClient(Credential(cfg.client_id, cfg.client_secret), logger=_SdkLog(log))  # type: ignore[arg-type]
        self._sdk.register_callback_handler(ChatbotMessage.TOPIC, BotMessageHandler(ingest, log))
        self._sdk.pre_start()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._frames: set[asyncio.Task[None]] = set()
        self._ws: Any = None
        self.connected = False
        self.connects = 0
        self.failures = 0
        self.last_error = ""

    def subscriptions(self) -> list[dict[str, str]]:
        return [{"type": "CALLBACK", "topic": topic} for topic in self._sdk.callback_handler_map]

    async def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="dingtalk-stream")

    async def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
            except TimeoutError:
                self._task.cancel()
            self._task = None
        if self._frames:
            await asyncio.wait(set(self._frames), timeout=5)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                endpoint, ticket = await self._client.open_stream(self.subscriptions(), UA)
                await self._serve(endpoint, ticket)
                self.last_error = "connection closed"
            except PermanentFailure as exc:
                self.last_error = exc.reason
                self._log.error("dingtalk.stream.rejected", reason=exc.reason)
            except (DeliveryError, OSError, TimeoutError, websockets.WebSocketException) as exc:
                self.last_error = exc.reason if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
                self._log.warning("dingtalk.stream.dropped", reason=self.last_error)
            except Exception as exc:  # noqa: BLE001 - keep the connection loop alive whatever happens
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._log.exception("dingtalk.stream.error")
            if self._stop.is_set():
                break
            delay = backoff_delay(self.failures, self._cfg.reconnect_min_seconds, self._cfg.reconnect_max_seconds)
            self.failures += 1
            self._log.info("dingtalk.stream.reconnect", delay=round(delay, 3), failures=self.failures)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _serve(self, endpoint: str, ticket: str) -> None:
        uri = f"{endpoint}?ticket={quote_plus(ticket)}"
        async with websockets.connect(
            uri,
            proxy=None,
            max_size=MAX_FRAME_BYTES,
            open_timeout=self._cfg.http_timeout_seconds,
            user_agent_header=UA,
        ) as ws:
            self._ws = ws
            self._sdk.websocket = ws
            self.connected = True
            self.connects += 1
            self.failures = 0
            self._log.info("dingtalk.stream.connected", endpoint=endpoint)
            try:
                async for raw in ws:
                    if self._stop.is_set():
                        break
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        self._log.warning("dingtalk.stream.bad_frame", size=len(raw))
                        continue
                    if not isinstance(frame, dict):
                        continue
                    task = asyncio.create_task(self._sdk.background_task(frame))
                    self._frames.add(task)
                    task.add_done_callback(self._frames.discard)
            finally:
                self.connected = False
                self._ws = None
