"""Routing inbound messages to feature handlers, aiogram-style.

Each feature owns a :class:`Router`; the root router includes them in order. A handler
is registered with filters and returns replies; returning :data:`SKIP` lets the next
matching handler try. Handlers get a :class:`HandlerContext` holding the open
transaction, so their writes and their replies (the outbox rows) commit together.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Final, Union

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Inbound, Kind, Reply

if TYPE_CHECKING:
    from bot.context import AppContext
    from storage.models import Person


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


SKIP: Final = _Skip()

HandlerResult = Union[Reply, Sequence[Reply], None, _Skip]
Handler = Callable[[Inbound, "HandlerContext"], Awaitable[HandlerResult]]
Filter = Callable[[Inbound, "HandlerContext"], bool]

HASHTAG = re.compile(r"[#＃]([^\s#＃，。,.!！?？]+)")


@dataclass
class HandlerContext:
    """Everything a handler may touch: the app, the open transaction, the sender."""

    app: AppContext
    session: AsyncSession
    person: Person
    inbox_id: int | None
    now: datetime
    router: Router
    pushes: list[Reply] = field(default_factory=list)

    async def redispatch(self, msg: Inbound) -> list[Reply]:
        """Route a derived message (e.g. the text left after a #tag) through the root router."""
        return await self.router.dispatch(msg, self)


@dataclass(frozen=True)
class _Route:
    handler: Handler
    filters: tuple[Filter, ...]


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self._routes: list[_Route] = []
        self._children: list[Router] = []

    def include(self, router: Router) -> Router:
        self._children.append(router)
        return router

    def on(self, *filters: Filter) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(handler, filters))
            return handler

        return register

    def _candidates(self) -> list[_Route]:
        routes = list(self._routes)
        for child in self._children:
            routes.extend(child._candidates())
        return routes

    async def dispatch(self, msg: Inbound, hc: HandlerContext) -> list[Reply]:
        """Run the first matching handler that does not SKIP; collect its replies."""
        for route in self._candidates():
            if not all(f(msg, hc) for f in route.filters):
                continue
            result = await route.handler(msg, hc)
            if result is SKIP:
                continue
            if result is None:
                return []
            if isinstance(result, Reply):
                return [result]
            return list(result)  # type: ignore[arg-type]
        return []


# ---- filters ---------------------------------------------------------------------


def kind(*kinds: Kind) -> Filter:
    return lambda msg, _hc: msg.kind in kinds


def text() -> Filter:
    return lambda msg, _hc: msg.kind == Kind.TEXT and bool(msg.text.strip())


def voice() -> Filter:
    return lambda msg, _hc: msg.kind == Kind.VOICE


def hashtag() -> Filter:
    return lambda msg, _hc: msg.kind == Kind.TEXT and HASHTAG.search(msg.text) is not None


def event(*names: str) -> Filter:
    return lambda msg, _hc: msg.kind == Kind.EVENT and (not names or msg.event in names)


def role(*roles: str) -> Filter:
    return lambda _msg, hc: hc.person.role in roles


def matches(pattern: str) -> Filter:
    compiled = re.compile(pattern)
    return lambda msg, _hc: msg.kind == Kind.TEXT and compiled.search(msg.text.strip()) is not None


def with_text(msg: Inbound, new_text: str) -> Inbound:
    """A copy of ``msg`` carrying different text (for redispatching what is left)."""
    return replace(msg, text=new_text)
