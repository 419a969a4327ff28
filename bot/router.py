"""Routing inbound messages to feature handlers, aiogram-style.

Each feature owns a :class:`Router`; the root router includes them in order. A handler
is registered with filters and returns replies; returning :data:`SKIP` lets the next
matching handler try. Handlers get a :class:`HandlerContext` holding the open
transaction, so their writes and their replies (the outbox rows) commit together.

A filter answers falsy (not this route), ``True``, or a non-empty dict of what it found
(``matches()`` gives ``{"match": re.Match}``): the dicts of a route's filters are merged
and passed to the handler as keyword arguments, so a handler reads the filter's match
instead of running the regex again and hoping it agrees. As in aiogram, a handler
receives only the keywords its signature names (or all of them with ``**kwargs``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Final

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Inbound, Kind, Reply

if TYPE_CHECKING:
    from bot.context import AppContext
    from storage.models import Person


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


SKIP: Final = _Skip()

HandlerResult = Reply | Sequence[Reply] | None | _Skip
Handler = Callable[Concatenate[Inbound, "HandlerContext", ...], Awaitable[HandlerResult]]
FilterResult = bool | dict[str, Any]
Filter = Callable[[Inbound, "HandlerContext"], FilterResult]

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
    # the keyword arguments the handler takes; None: it takes any (**kwargs)
    accepts: frozenset[str] | None

    @classmethod
    def of(cls, handler: Handler, filters: tuple[Filter, ...]) -> _Route:
        params = list(inspect.signature(handler).parameters.values())[2:]  # after (msg, hc)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return cls(handler, filters, None)
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return cls(handler, filters, frozenset(p.name for p in params if p.kind in named))

    def check(self, msg: Inbound, hc: HandlerContext) -> dict[str, Any] | None:
        """The handler's keyword arguments gathered from the filters, or None when one says no.

        Filters run in order and stop at the first falsy one, so a cheap filter in front
        (``hashtag()``) spares the regex; an empty dict counts as no, as in aiogram.
        """
        found: dict[str, Any] = {}
        for f in self.filters:
            result = f(msg, hc)
            if not result:
                return None
            if isinstance(result, dict):
                found.update(result)
        if self.accepts is None:
            return found
        return {k: v for k, v in found.items() if k in self.accepts}


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
            self._routes.append(_Route.of(handler, filters))
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
            found = route.check(msg, hc)
            if found is None:
                continue
            result = await route.handler(msg, hc, **found)
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
    """Text (stripped) in which ``pattern`` is found; the handler gets it as ``match: re.Match[str]``."""
    compiled = re.compile(pattern)

    def found(msg: Inbound, _hc: HandlerContext) -> FilterResult:
        m = compiled.search(msg.text.strip()) if msg.kind == Kind.TEXT else None
        return {"match": m} if m is not None else False

    return found


def with_text(msg: Inbound, new_text: str) -> Inbound:
    """A copy of ``msg`` carrying different text (for redispatching what is left)."""
    return replace(msg, text=new_text)
