"""Pure timer math for escalation ladders: due moments, pause/resume, firing after downtime.

Nothing here touches a database or a clock: every function takes the moment it is about
and returns new immutable state, so a database-backed timer and its sweep (written
elsewhere) call it and store the result. The intended row (one per subject and ladder)::

    subject_type, subject_id  what is watched (lead, deal, invoice)
    ladder        Ladder.id
    clock         Ladder.clock at start (informational; the math uses the ladder's clock)
    level         TimerState.fired — highest level number fired or superseded, 0 = none
    budget        ``at`` of the next level (informational, for reports)
    consumed      TimerState.consumed — budget used before ``anchor_at``
    anchor_at     TimerState.anchor — when counting (re)started: start or last resume
    paused_at, paused_until   TimerState.paused_at / paused_until (NULL while running)
    due_at        LadderTimer.next_fire_at(state, attributes) — the sweep selects due_at <= now
    state         'running' | 'paused' | 'done' (LadderTimer.status)
    version       optimistic lock: the sweep updates ``WHERE id = ? AND version = ?``

A sweep does, per due row: ``firing = timer.due_levels(state, now, attributes)``; send
``firing.fire`` (if any), record ``firing.superseded`` as skipped, store ``firing.state``
and ``firing.next_fire_at`` as the new ``due_at``. New activity on the subject (e.g. a
stalled deal gets a follow-up) is ``timer.start(now)`` again.

Budget semantics: level *n* is due when the consumed budget on the ladder's clock reaches
``level.at``; its card goes out at ``fire_at`` = the due moment moved into the level's
send window (``send_at``) when it has one. Pausing stores the consumed budget; resuming
restarts counting, so the due moment is recomputed from the remaining budget. A pause
with ``until`` resumes by itself at that moment (the due moments are then already known);
a pause without ``until`` has no due moment until :meth:`LadderTimer.resume`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from reminders.calendar import Calendar
from reminders.ladders import Ladder, Level

Status = Literal["running", "paused", "done"]


@dataclass(frozen=True, slots=True)
class TimerState:
    """What a timer row stores (see the module docstring for the column mapping)."""

    anchor: datetime
    consumed: timedelta = timedelta(0)
    fired: int = 0
    paused_at: datetime | None = None
    paused_until: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


@dataclass(frozen=True, slots=True)
class LevelDue:
    """When a level's budget runs out (``due_at``) and when its card goes out (``fire_at``).

    Both are None while the timer is paused without a resume date.
    """

    level: Level
    due_at: datetime | None
    fire_at: datetime | None


@dataclass(frozen=True, slots=True)
class Firing:
    """The answer of :meth:`LadderTimer.due_levels`: what to send now and what to store."""

    fire: Level | None
    superseded: tuple[Level, ...]
    state: TimerState
    next_fire_at: datetime | None


class LadderTimer:
    """The math of one ladder on one calendar; stateless, so one instance serves every row."""

    def __init__(self, ladder: Ladder, calendar: Calendar) -> None:
        self.ladder = ladder
        self.calendar = calendar

    def start(self, at: datetime) -> TimerState:
        """A fresh timer counting from ``at`` (also: restart after new activity on the subject)."""
        return TimerState(anchor=self.calendar.localize(_aware(at)))

    # ---- budget ----------------------------------------------------------------

    def settle(self, state: TimerState, now: datetime) -> TimerState:
        """Apply an automatic resume whose ``paused_until`` has passed by ``now``."""
        if state.paused_until is not None and _aware(now) >= state.paused_until:
            return self.resume(state, state.paused_until)
        return state

    def consumed(self, state: TimerState, now: datetime) -> timedelta:
        """Budget used up to ``now`` on the ladder's clock."""
        state = self.settle(state, now)
        if state.paused or _aware(now) <= state.anchor:
            return state.consumed
        return state.consumed + self.calendar.elapsed(state.anchor, now, self.ladder.clock)

    def pause(self, state: TimerState, at: datetime, until: datetime | None = None) -> TimerState:
        """Stop counting at ``at``; with ``until`` the timer resumes by itself then.

        Pausing a paused timer only changes ``until`` (e.g. a customer postpones again).
        """
        at = _aware(at)
        if until is not None and _aware(until) < at:
            raise ValueError(f"resume date {until.isoformat()} is before the pause {at.isoformat()}")
        until = self.calendar.localize(until) if until is not None else None
        state = self.settle(state, at)
        if state.paused:
            return replace(state, paused_until=until)
        if at < state.anchor:
            raise ValueError(f"pause at {at.isoformat()} is before the timer started counting ({state.anchor.isoformat()})")
        used = state.consumed + self.calendar.elapsed(state.anchor, at, self.ladder.clock)
        return replace(state, consumed=used, paused_at=self.calendar.localize(at), paused_until=until)

    def resume(self, state: TimerState, at: datetime) -> TimerState:
        """Start counting again at ``at`` with the budget left; a running timer is unchanged."""
        if not state.paused:
            return state
        at = _aware(at)
        assert state.paused_at is not None
        anchor = max(at, state.paused_at)
        return replace(state, anchor=self.calendar.localize(anchor), paused_at=None, paused_until=None)

    # ---- schedule --------------------------------------------------------------

    def level_due(self, state: TimerState, level: Level) -> LevelDue:
        """When ``level``'s budget runs out given ``state`` (recomputed from the remaining budget)."""
        if state.paused and state.paused_until is None:
            return LevelDue(level, None, None)
        anchor = state.paused_until if state.paused and state.paused_until is not None else state.anchor
        remaining = max(level.at - state.consumed, timedelta(0))
        due = self.calendar.add(anchor, remaining, self.ladder.clock)
        fire = self.calendar.next_working_day_at(due, level.send_at) if level.send_at else due
        return LevelDue(level, due, fire)

    def schedule(self, state: TimerState, attributes: Mapping[str, Any] | None = None) -> tuple[LevelDue, ...]:
        """Due moments of the levels not yet handled whose condition holds for ``attributes``."""
        return tuple(
            self.level_due(state, level)
            for level in self.ladder.levels
            if level.number > state.fired and level.applies(attributes)
        )

    def next_fire_at(self, state: TimerState, attributes: Mapping[str, Any] | None = None) -> datetime | None:
        """The row's ``due_at``: earliest ``fire_at`` of the remaining levels (None: nothing to wait for)."""
        moments = [d.fire_at for d in self.schedule(state, attributes) if d.fire_at is not None]
        return min(moments) if moments else None

    def status(self, state: TimerState) -> Status:
        if state.fired >= len(self.ladder.levels):
            return "done"
        return "paused" if state.paused else "running"

    # ---- firing ----------------------------------------------------------------

    def due_levels(self, state: TimerState, now: datetime, attributes: Mapping[str, Any] | None = None) -> Firing:
        """What fires at ``now``: only the HIGHEST overdue level; lower overdue ones are superseded.

        After downtime (the sweep did not run for a while) a rep must not get the 15-minute
        and the 2-hour card at once: the 2-hour one goes out, the 15-minute one is recorded
        as superseded. Levels whose condition is false are neither (they may still fire
        later if the subject changes, e.g. the amount goes up).
        """
        state = self.settle(state, now)
        now = _aware(now)
        overdue = [d for d in self.schedule(state, attributes) if d.fire_at is not None and d.fire_at <= now]
        if not overdue:
            return Firing(None, (), state, self.next_fire_at(state, attributes))
        top = max(overdue, key=lambda d: d.level.number)
        superseded = tuple(d.level for d in overdue if d is not top)
        new_state = replace(state, fired=top.level.number)
        return Firing(top.level, superseded, new_state, self.next_fire_at(new_state, attributes))


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"moment must be timezone-aware (got naive {moment.isoformat()})")
    return moment
