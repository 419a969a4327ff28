"""The aiohttp application: channel callbacks, /healthz, /metrics and the routes features bring."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from bot.channels.local import LOOPBACK, is_trusted_token
from bot.context import AppContext
from bot.pipeline.outbox import backlog
from bot.redact import redact
from storage.db import ping

APP_KEY = web.AppKey("genjin", AppContext)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A caller gets a clear 4xx for bad input; an unexpected error is logged, not leaked."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # noqa: BLE001
        request.app[APP_KEY].log.exception("http.unhandled", path=request.path)
        return web.json_response({"ok": False, "error": "internal error"}, status=500)


def is_trusted(request: web.Request, token: str) -> bool:
    """A loopback caller, or one presenting ``token`` (the ``[local] token``), may see details."""
    return request.remote in LOOPBACK or is_trusted_token(request, token)


async def _outbox_backlog(app: AppContext) -> dict[str, object]:
    found = await backlog(app)
    app.metrics.outbox_pending.set(found.pending)
    app.metrics.outbox_oldest_pending.set(found.oldest_pending_seconds)
    return {"pending": found.pending, "oldest_pending_seconds": round(found.oldest_pending_seconds, 1)}


async def healthz(request: web.Request) -> web.Response:
    """Health for load balancers; error details (hosts, drivers) only for trusted callers."""
    app = request.app[APP_KEY]
    report: dict[str, object] = {}
    healthy = True
    try:
        await ping(app.engine)
        report["database"] = {"ok": True, "dialect": app.engine.dialect.name}
        report["outbox"] = await _outbox_backlog(app)
    except Exception as exc:  # noqa: BLE001
        healthy = False
        report["database"] = {"ok": False}
        if is_trusted(request, app.config.local.token):
            report["database"]["detail"] = redact(f"{type(exc).__name__}: {exc}")  # type: ignore[index]
    channels: dict[str, object] = {}
    for platform, channel in app.channels.items():
        h = channel.health()
        app.metrics.channel_up.labels(platform).set(1 if h.ok else 0)
        channels[platform] = {"ok": h.ok, "detail": h.detail, **h.extra}
        healthy = healthy and h.ok
    report["channels"] = channels
    report["ok"] = healthy
    return web.json_response(report, status=200 if healthy else 503, dumps=_dumps)


def _dumps(obj: object) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


async def metrics(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    try:
        await _outbox_backlog(app)
    except Exception:  # noqa: BLE001 - metrics must render while the database is down
        app.log.warning("metrics.backlog_unavailable")
    body = app.metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8", headers={"X-Metrics": "prometheus"})


def create_web_app(app: AppContext, routes: Sequence[web.RouteDef] = ()) -> web.Application:
    """Health, metrics, the channels' callbacks and the features' own endpoints (``routes``)."""
    web_app = web.Application(client_max_size=app.config.server.max_body_bytes, middlewares=[_errors])
    web_app[APP_KEY] = app
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics)
    for channel in app.channels.values():
        channel.setup_routes(web_app)
    web_app.router.add_routes(list(routes))
    return web_app
