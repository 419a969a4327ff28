"""The router on its own: filters hand what they found to the handler; falsy stops a route; SKIP falls through."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, cast

from bot.messages import Inbound, Kind, Reply
from bot.router import (
    SKIP,
    FilterResult,
    HandlerContext,
    HandlerResult,
    Router,
    matches,
    text,
)
from storage.models import Person


def _msg(body: str, kind: Kind = Kind.TEXT) -> Inbound:
    return Inbound(platform="local", message_id=body, sender="u", kind=kind, text=body)


def _hc(router: Router) -> HandlerContext:
    """No app and no session: these handlers touch neither."""
    return HandlerContext(app=cast(Any, None), session=cast(Any, None), person=Person(name="u", role="rep"),
                          inbox_id=None, now=datetime(2026, 3, 2, 9, tzinfo=UTC), router=router)


async def _texts(router: Router, body: str, kind: Kind = Kind.TEXT) -> list[str]:
    return [reply.text for reply in await router.dispatch(_msg(body, kind), _hc(router))]


async def test_filter_dicts_are_merged_and_passed_as_keywords() -> None:
    r = Router("probe")

    def sender(msg: Inbound, hc: HandlerContext) -> FilterResult:
        return {"who": hc.person.name}

    @r.on(text(), sender, matches(r"^完成\s*(\d+)$"))
    async def done(msg: Inbound, hc: HandlerContext, match: re.Match[str], who: str) -> HandlerResult:
        return Reply(text=f"{who} {match.group(1)} {match.string!r}")

    assert await _texts(r, "  完成 12 ") == ["u 12 '完成 12'"]  # the match is on the stripped text


async def test_a_handler_gets_only_the_keywords_it_names() -> None:
    r = Router("probe")
    seen: list[dict[str, Any]] = []

    @r.on(matches(r"^#团队$"))
    async def plain(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        return Reply(text="plain")

    @r.on(matches(r"^#(漏斗)$"), lambda _msg, _hc: {"extra": 1})
    async def everything(msg: Inbound, hc: HandlerContext, **found: Any) -> HandlerResult:
        seen.append(found)
        return Reply(text="all")

    assert await _texts(r, "#团队") == ["plain"]
    assert await _texts(r, "#漏斗") == ["all"]
    assert sorted(seen[0]) == ["extra", "match"] and seen[0]["match"].group(1) == "漏斗"


async def test_falsy_filter_stops_the_route_and_later_filters_do_not_run() -> None:
    r = Router("probe")
    ran: list[str] = []

    def never(msg: Inbound, hc: HandlerContext) -> FilterResult:
        ran.append("never")
        return {}  # an empty dict says no, as in aiogram

    def spy(msg: Inbound, hc: HandlerContext) -> FilterResult:
        ran.append("spy")
        return True

    @r.on(never, spy)
    async def unreachable(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        return Reply(text="unreachable")

    @r.on(matches(r"^完成$"))
    async def done(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        return Reply(text="done")

    assert await _texts(r, "完成") == ["done"]
    assert ran == ["never"]
    assert await _texts(r, "推迟") == []  # no filter matched: nothing answers
    assert await _texts(r, "完成", Kind.VOICE) == []  # matches() is for text only


async def test_skip_falls_through_to_the_next_matching_route_with_its_own_match() -> None:
    root = Router("root")
    first, second = Router("first"), Router("second")
    root.include(first)
    root.include(second)

    @first.on(matches(r"^(确认|取消)$"))
    async def confirm(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        return SKIP if match.group(1) == "取消" else Reply(text="first")

    @second.on(matches(r"^(取)(消)$"))
    async def cancel(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        return Reply(text=f"second {match.groups()}")

    assert await _texts(root, "确认") == ["first"]
    assert await _texts(root, "取消") == ["second ('取', '消')"]
