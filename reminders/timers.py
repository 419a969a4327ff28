"""Timers: escalation ladders as database rows that any node may sweep.

A timer watches one subject (a lead offer, an open deal, an installment) on one ladder
(``reminders/default_ladders/*.toml``). Its row stores the budget consumed, the anchor it
counts from, the pause, the highest level handled and the next due moment, so the sweep
finds due timers with one indexed query. The math (clocks, pause/resume, which level
fires after downtime) is :mod:`reminders.ladder_timers`; this module stores it.

Exactly once, however many nodes run:

* the sweep claims due rows with the shared claim helper (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL) and a short lease, so nodes split the work;
* every state change is a compare-and-set on ``version``: a node holding a stale row
  changes nothing;
* the level's effect (cards through :func:`bot.pipeline.notify.notify`) is written in the
  same transaction as the state change, with the idempotency key
  ``timer:ID:LEVEL:VERSION`` on each outbox row (unique), so a crash before commit leaves
  both undone and a retry cannot send twice.

After downtime only the highest overdue level fires; the lower ones are recorded as
superseded (a rep does not get a stale 15-minute reminder after the 2-hour reassignment).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from reminders.calendar import Calendar
from reminders.ladder_timers import LadderTimer, TimerState
from reminders.ladders import Ladder, Ladders, Level
from storage import deferred
from storage.claims import claim_rows
from storage.db import insert_for
from storage.models import KeyValue, Timer

OPEN_STATES = ("running", "paused")
CALENDAR_KEY = "timers.calendar_fingerprint"


@dataclass(frozen=True)
class Fired:
    """One level of one timer firing now: what a ladder's handler needs to build its cards."""

    timer: Timer
    ladder: Ladder
    level: Level
    superseded: tuple[Level, ...]
    next_fire_at: datetime | None
    now: datetime

    @property
    def key(self) -> str:
        """The idempotency key of this firing (the row's version before the change)."""
        return f"timer:{self.timer.id}:{self.level.number}:{self.timer.version - 1}"


LevelHandler = Callable[[AppContext, AsyncSession, Fired], Awaitable[None]]


def state_of(row: Timer) -> TimerState:
    return TimerState(
        anchor=row.anchor_at,
        consumed=timedelta(seconds=row.consumed_seconds),
        fired=row.level,
        paused_at=row.paused_at,
        paused_until=row.paused_until,
    )


def calendar_fingerprint(calendar: Calendar) -> str:
    """Changes when sales ops edit the calendar (hours, extra days, time zone)."""
    return hashlib.sha256(repr(calendar.spec).encode()).hexdigest()[:32]


_FIND = select(Timer).where(Timer.subject_type == bindparam("subject_type"), Timer.subject_id == bindparam("subject_id"),
                            Timer.ladder == bindparam("ladder"))


def _set(row: Timer, **values: Any) -> None:
    """Change a timer row in its transaction; a stored row is updated at commit (:func:`storage.deferred.set_later`).

    The batch's timers are then one executemany (``updated_at`` takes its onupdate default).
    Timer rows are read by subject, not in bulk, inside a handler's transaction, so a read
    does not first write the waiting rows (``table=None``): an ORM read of the row returns
    this object with its new values (filter states in Python, as
    :func:`handlers.escalations.service.open_timers` does), but a plain column query in the
    same transaction would see a restarted timer's old state.
    """
    deferred.set_later(row, values, table=None)


class Timers:
    """The timers of one runtime: the calendar, the ladders and a handler per ladder id."""

    def __init__(self, calendar: Calendar, ladders: Ladders) -> None:
        self.calendar = calendar
        self.ladders = ladders
        self._handlers: dict[str, LevelHandler] = {}

    def handle(self, ladder_id: str, handler: LevelHandler, *, replace: bool = False) -> None:
        """Register what happens when a level of ``ladder_id`` fires (one feature owns each ladder).

        ``replace`` swaps the owner's handler (tests that record firings of a feature's ladder).
        """
        if ladder_id not in self.ladders:
            raise KeyError(f"no ladder {ladder_id!r} (known: {', '.join(self.ladders.ids())})")
        if ladder_id in self._handlers and not replace:
            raise ValueError(f"ladder {ladder_id!r} already has a handler")
        self._handlers[ladder_id] = handler

    def math(self, ladder_id: str) -> LadderTimer:
        return LadderTimer(self.ladders.get(ladder_id), self.calendar)

    # ---- changes in the caller's transaction -------------------------------------

    def _store(self, row: Timer, math: LadderTimer, state: TimerState) -> None:
        status = math.status(state)
        _set(row, anchor_at=state.anchor, consumed_seconds=state.consumed.total_seconds(), level=state.fired,
             paused_at=state.paused_at, paused_until=state.paused_until, state=status,
             due_at=math.next_fire_at(state, row.attributes) if status != "done" else None, version=(row.version or 0) + 1)

    async def find(self, session: AsyncSession, subject_type: str, subject_id: int, ladder: str) -> Timer | None:
        return await session.scalar(_FIND, {"subject_type": subject_type, "subject_id": subject_id, "ladder": ladder})

    async def start(
        self,
        session: AsyncSession,
        *,
        subject_type: str,
        subject_id: int,
        ladder: str,
        at: datetime,
        attributes: Mapping[str, Any] | None = None,
        absent: bool = False,
    ) -> Timer:
        """Start the ladder for a subject, or restart it (a counting activity resets the clock).

        ``absent``: the caller has just read the subject's timers, in any state, and this
        ladder has no row (so it is not looked up again).
        """
        math = self.math(ladder)
        row = None if absent else await self.find(session, subject_type, subject_id, ladder)
        if row is None:
            row = Timer(subject_type=subject_type, subject_id=subject_id, ladder=ladder, clock=str(math.ladder.clock),
                        attributes=dict(attributes or {}), version=0, created_at=at)
            session.add(row)
        self.restart(row, at=at, attributes=attributes)
        await session.flush()
        return row

    def restart(self, row: Timer, *, at: datetime, attributes: Mapping[str, Any] | None = None) -> Timer:
        """Reset the clock of a row already in hand (what :meth:`start` does after its look-up).

        No look-up and no flush: a caller that read the row with others (a deal's timers and
        its episode in one statement) restarts it as one UPDATE when the transaction commits (:func:`_set`).
        """
        if attributes is not None:
            _set(row, attributes=dict(attributes))
        math = self.math(row.ladder)
        self._store(row, math, math.start(at))
        _set(row, lease_until=None)
        return row

    async def pause(self, session: AsyncSession, row: Timer, *, at: datetime, until: datetime | None) -> Timer:
        """Stop counting (e.g. waiting for a tender result); with ``until`` it resumes by itself."""
        math = self.math(row.ladder)
        self._store(row, math, math.pause(state_of(row), at, until))
        return row

    async def resume(self, session: AsyncSession, row: Timer, *, at: datetime) -> Timer:
        math = self.math(row.ladder)
        self._store(row, math, math.resume(state_of(row), at))
        return row

    async def cancel(self, session: AsyncSession, row: Timer) -> None:
        """The subject no longer needs watching (lead claimed, deal closed, invoice paid)."""
        _set(row, state="cancelled", due_at=None, version=row.version + 1)

    async def set_attributes(self, session: AsyncSession, row: Timer, attributes: Mapping[str, Any]) -> None:
        """New facts for level conditions (e.g. the amount went up): the due moment may change."""
        _set(row, attributes=dict(attributes))
        if row.state in OPEN_STATES:
            math = self.math(row.ladder)
            self._store(row, math, state_of(row))

    # ---- the sweep ------------------------------------------------------------------

    async def sweep(self, app: AppContext) -> int:
        """Fire every due timer; returns how many levels fired on this node."""
        fired = 0
        while True:
            claimed = await self._claim(app)
            if not claimed:
                break
            for timer_id in claimed:
                try:
                    if await self._fire(app, timer_id):
                        fired += 1
                except Exception:  # noqa: BLE001 - one broken subject must not stop the others; the lease retries it
                    app.log.exception("timers.fire_failed", timer_id=timer_id)
            if len(claimed) < app.config.timers.batch:
                break
        if fired:
            app.outbox_wakeup.set()
        return fired

    async def _claim(self, app: AppContext) -> list[int]:
        now = app.clock.now()

        def claimable(row: Any) -> Any:
            return and_(
                row.state.in_(OPEN_STATES),
                row.due_at.is_not(None),
                row.due_at <= now,
                or_(row.lease_until.is_(None), row.lease_until <= now),
            )

        async with app.sessions() as session:
            async with session.begin():
                return await claim_rows(
                    session,
                    Timer,
                    claimable=claimable,
                    values={"lease_until": now + timedelta(seconds=app.config.timers.lease_seconds)},
                    returning=(Timer.id,),
                    limit=app.config.timers.batch,
                    order_by=lambda row: (row.due_at, row.id),
                )

    async def _fire(self, app: AppContext, timer_id: int) -> bool:
        now = app.clock.now()
        async with app.sessions() as session:
            async with session.begin():
                row = await session.get(Timer, timer_id)
                if row is None or row.state not in OPEN_STATES or row.due_at is None or row.due_at > now:
                    return False
                math = self.math(row.ladder)
                firing = math.due_levels(state_of(row), now, row.attributes)
                version = row.version
                state = firing.state
                changed = await session.execute(
                    update(Timer)
                    .where(Timer.id == row.id, Timer.version == version)
                    .values(
                        anchor_at=state.anchor,
                        consumed_seconds=state.consumed.total_seconds(),
                        level=state.fired,
                        paused_at=state.paused_at,
                        paused_until=state.paused_until,
                        state=math.status(state),
                        due_at=firing.next_fire_at if math.status(state) != "done" else None,
                        version=version + 1,
                        lease_until=None,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                if changed.rowcount != 1:
                    return False  # another node changed it first
                await session.refresh(row)
                for level in firing.superseded:
                    app.log.info("timers.superseded", timer_id=row.id, ladder=row.ladder, level=level.number)
                if firing.fire is None:
                    return False
                handler = self._handlers.get(row.ladder)
                if handler is None:
                    app.log.warning("timers.no_handler", ladder=row.ladder, timer_id=row.id)
                    return False
                await handler(app, session, Fired(row, math.ladder, firing.fire, firing.superseded, firing.next_fire_at, now))
        return True

    async def recompute_if_calendar_changed(self, app: AppContext) -> int:
        """After sales ops edit the calendar: bump every open timer's version and recompute its due moment.

        The fingerprint of the calendar the due moments were computed with is kept in the
        database, so the first node to start with the new calendar does it, once.
        """
        fingerprint = calendar_fingerprint(self.calendar)
        changed = 0
        async with app.sessions() as session:
            async with session.begin():
                # the row may not exist yet and several nodes may start at once: insert-if-absent, then lock it
                insert = insert_for(app.engine.dialect.name)
                created = await session.scalar(
                    insert(KeyValue)
                    .values(key=CALENDAR_KEY, value={"fingerprint": fingerprint}, updated_at=app.clock.now())
                    .on_conflict_do_nothing(index_elements=["key"])
                    .returning(KeyValue.key)
                )
                if created is not None:
                    return 0  # the first calendar this database sees: due moments were computed with it
                stored = await session.get(KeyValue, CALENDAR_KEY, with_for_update=True, populate_existing=True)
                if stored is None or stored.value.get("fingerprint") == fingerprint:
                    return 0
                stored.value = {"fingerprint": fingerprint}
                for row in (await session.scalars(select(Timer).where(Timer.state.in_(OPEN_STATES)))).all():
                    math = self.math(row.ladder)
                    self._store(row, math, state_of(row))
                    changed += 1
        if changed:
            app.log.info("timers.recomputed", count=changed, reason="calendar changed")
        return changed

    async def alert_fallback_years(self, app: AppContext, notify_ops: Callable[[AsyncSession, int], Awaitable[None]]) -> list[int]:
        """Tell ops once per year that the statutory calendar does not cover it yet (Monday–Friday is assumed).

        The calendar only reports the years it had to guess; the first node to insert the
        marker row sends the one alert, every other node and every later sweep stays quiet.
        """
        alerted: list[int] = []
        for year in sorted(self.calendar.fallback_years_used):
            key = f"calendar.fallback_alerted.{year}"
            async with app.sessions() as session:
                async with session.begin():
                    insert = insert_for(app.engine.dialect.name)
                    stmt = insert(KeyValue).values(key=key, value={"at": app.clock.now().isoformat()}, updated_at=app.clock.now())
                    inserted = await session.scalar(stmt.on_conflict_do_nothing(index_elements=["key"]).returning(KeyValue.key))
                    if inserted is None:
                        continue
                    await notify_ops(session, year)
                    alerted.append(year)
        return alerted


async def sweep_timers(app: AppContext) -> int:
    """The job every node runs: recompute after a calendar edit, fire due timers, alert ops about guessed years."""
    from bot.messages import Reply
    from bot.pipeline.notify import ToRole, notify
    from cards.model import Card

    timers = app.timers
    await timers.recompute_if_calendar_changed(app)
    fired = await timers.sweep(app)

    async def tell_ops(session: AsyncSession, year: int) -> None:
        card = Card(
            title=f"{year} 年法定节假日尚未收录",
            kind="alert",
            blocks=(
                f"节假日数据包还没有 {year} 年的安排，期间按周一至周五上班计算（含销售运营在日历 TOML 中配置的额外假日和调休）。",
                "请在国务院公布安排后升级 chinesecalendar，或在日历 TOML 中补充 extra_holidays / extra_workdays。",
            ),
        )
        await notify(app, session, ToRole("sales_ops"), Reply(card=card, tag="calendar.fallback"), now=app.clock.now())

    await timers.alert_fallback_years(app, tell_ops)
    return fired


async def audience_of(session: AsyncSession, level: Level, owner_key: str | None) -> list[Any]:
    """The recipients of a level: ``owner`` (the subject's person), ``manager`` (theirs: the
    person's manager, else the team's), ``director`` and ``finance`` (everyone with that role),
    ``role:KEY`` and ``team:KEY``. Returns :mod:`bot.pipeline.notify` recipients, each once."""
    from bot.pipeline.notify import ToRole, ToTeam
    from storage.models import Person, Team

    owner = await session.scalar(select(Person).where(Person.key == owner_key)) if owner_key else None
    out: list[Any] = []
    for who in level.audience:
        if who == "owner" and owner is not None:
            out.append(owner)
        elif who == "manager" and owner is not None:
            manager = await session.get(Person, owner.manager_id) if owner.manager_id else None
            if manager is None and owner.team_id is not None:
                team = await session.get(Team, owner.team_id)
                manager_key = team.manager_key if team is not None else ""
                manager = await session.scalar(select(Person).where(Person.key == manager_key)) if manager_key else None
            if manager is not None:
                out.append(manager)
        elif who in ("director", "finance"):
            out.append(ToRole(who))
        elif who.startswith("role:"):
            out.append(ToRole(who.removeprefix("role:")))
        elif who.startswith("team:"):
            out.append(ToTeam(who.removeprefix("team:")))
    unique: list[Any] = []
    for recipient in out:
        if recipient not in unique:
            unique.append(recipient)
    return unique
