"""``POST /api/leads``: leads from a CRM, a web form or a marketing tool.

* ``Authorization: Bearer <[leads] api_token>``; without the token configured the route is
  not mounted at all (404), a wrong or missing token gets 401;
* the body is one lead object or a list (up to 1,000), validated all or nothing; field
  errors come back as 422 ``{"detail": [{"loc", "msg", "type"}]}``;
* idempotent on the caller's ``id``: a retry returns the lead created the first time;
* each lead is taken in its own transaction; an unexpected failure answers 503 (retry),
  never 500, and the leads before it stay taken (the retry is idempotent).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from bot.context import AppContext
from handlers.leads import service
from handlers.leads.intake import parse_api_payload

PATH = "/api/leads"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _authorised(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def routes(app: AppContext) -> list[web.RouteDef]:
    cfg = app.config.leads
    if not cfg.enabled or not cfg.api_token:
        return []

    async def post_leads(request: web.Request) -> web.Response:
        if not _authorised(request, cfg.api_token):
            return _json({"ok": False, "error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})
        try:
            body = await request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            return _json({"ok": False, "detail": [{"loc": ["body"], "msg": "不是有效的 JSON", "type": "json_invalid"}]}, 422)
        leads, errors = parse_api_payload(body, app.config.tz)
        if errors:
            return _json({"ok": False, "detail": errors}, 422)
        results: list[dict[str, Any]] = []
        try:
            for lead in leads:
                async with app.sessions() as session, session.begin():
                    outcome = await service.intake(app, session, lead, now=app.clock.now())
                    row = outcome.lead
                    assert row is not None
                    results.append({"id": row.external_id, "lead_id": row.id, "status": row.status,
                                    "created": outcome.status != "existing"})
        except Exception:  # noqa: BLE001 - the caller retries; ids make that safe
            app.log.exception("api.leads.failed", taken=len(results), total=len(leads))
            return _json({"ok": False, "error": "temporarily unavailable, retry with the same ids", "leads": results}, 503,
                         {"Retry-After": "5"})
        app.outbox_wakeup.set()
        return _json({"ok": True, "leads": results})

    return [web.post(PATH, post_leads)]
