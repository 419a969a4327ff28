"""The aiohttp application: channel callbacks, /healthz and /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.context import AppContext
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


async def healthz(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    report: dict[str, object] = {}
    healthy = True
    try:
        await ping(app.engine)
        report["database"] = {"ok": True, "dialect": app.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001
        healthy = False
        report["database"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
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
    body = request.app[APP_KEY].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8", headers={"X-Metrics": "prometheus"})


def create_web_app(app: AppContext) -> web.Application:
    web_app = web.Application(client_max_size=app.config.server.max_body_bytes, middlewares=[_errors])
    web_app[APP_KEY] = app
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics)
    for channel in app.channels.values():
        channel.setup_routes(web_app)
    return web_app
