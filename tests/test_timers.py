"""Timers end to end: ladders on the sales calendar as database rows, fired by the sweep.

Every case moves an injected clock to one second before and then exactly to the expected
moment, so a timer that fires early or late fails. Working hours are 09:00–18:00 unless a
case says otherwise.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import FakeClock
from bot.context import AppContext
from bot.messages import Reply
from bot.pipeline.notify import notify
from bot.runtime import Runtime
from cards.model import Card, CardField
from reminders.timers import Fired, audience_of, sweep_timers
from storage.models import OutboxRow, Timer
from tests.conftest import RuntimeFactory
from tests.harness import SH, Harness

SECOND = timedelta(seconds=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def calendar_dir(tmp_path: Path, hours: str = "09:00-18:00", extra: str = "") -> Path:
    folder = tmp_path / "calendar"
    folder.mkdir(exist_ok=True)
    (folder / "calendar.toml").write_text(f'hours = "{hours}"\n{extra}', encoding="utf-8")
    return folder


class Recorder:
    """A ladder handler that records each firing and sends a card to the level's audience."""

    def __init__(self) -> None:
        self.fired: list[tuple[str, int, int, datetime]] = []

    async def __call__(self, app: AppContext, session: AsyncSession, fired: Fired) -> None:
        self.fired.append((fired.ladder.id, fired.timer.subject_id, fired.level.number, fired.now))
        card = Card(title=f"{fired.ladder.id} 第{fired.level.number}级", kind="alert",
                    fields=(CardField("对象", str(fired.timer.subject_id)),))
        for recipient in await audience_of(session, fired.level, fired.timer.attributes.get("owner")):
            await notify(app, session, recipient, Reply(card=card, tag="timer"), now=fired.now,
                         klass=fired.level.card_class, dedupe_key=fired.key)


async def timers_runtime(make_runtime: RuntimeFactory, clock: FakeClock, cal: Path | None, **overrides: Any) -> tuple[Runtime, Recorder]:
    config: dict[str, Any] = {"calendar": {"dir": str(cal) if cal else ""}, **overrides}
    runtime = await make_runtime(config, clock=clock)
    recorder = Recorder()
    for ladder in ("lead_claim", "stalled_deal", "receivable"):
        runtime.app.timers.handle(ladder, recorder, replace=True)  # the escalations feature owns the deal/receivable ladders
    return runtime, recorder


async def start(runtime: Runtime, ladder: str, subject_id: int, when: datetime, **attributes: Any) -> Timer:
    async with runtime.app.sessions() as session:
        async with session.begin():
            return await runtime.app.timers.start(
                session, subject_type="test", subject_id=subject_id, ladder=ladder, at=when,
                attributes={"owner": "zhangwei", **attributes},
            )


async def fires_exactly_at(runtime: Runtime, clock: FakeClock, recorder: Recorder, moment: datetime, level: int) -> None:
    """Nothing fires a second before ``moment``; level ``level`` fires at it."""
    before = len(recorder.fired)
    clock.set(moment - SECOND)
    await sweep_timers(runtime.app)
    assert recorder.fired[before:] == [], f"fired early: {recorder.fired[before:]} (expected {moment})"
    clock.set(moment)
    await sweep_timers(runtime.app)
    assert [(lv, t) for _, _, lv, t in recorder.fired[before:]] == [(level, moment)], recorder.fired[before:]


@pytest.mark.parametrize(
    ("created", "reminder", "expiry"),
    [
        ("2026-03-13T17:50", "2026-03-16T09:05", "2026-03-16T10:50"),  # Friday evening → Monday
        ("2026-03-14T10:00", "2026-03-16T09:15", "2026-03-16T11:00"),  # Saturday counts from Monday's opening
        ("2026-09-30T17:30", "2026-09-30T17:45", "2026-10-08T10:30"),  # National Day week skipped
        ("2026-10-09T17:55", "2026-10-10T09:10", "2026-10-10T10:55"),  # Saturday 10-10 is a make-up workday
    ],
)
async def test_lead_claim_reminder_and_expiry(make_runtime: RuntimeFactory, tmp_path: Path, created: str, reminder: str, expiry: str) -> None:
    clock = FakeClock(at(created))
    runtime, recorder = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path))
    await start(runtime, "lead_claim", 1, at(created))
    await fires_exactly_at(runtime, clock, recorder, at(reminder), 1)
    await fires_exactly_at(runtime, clock, recorder, at(expiry), 2)
    [row] = await _timers(runtime)
    assert row.state == "done" and row.due_at is None and row.level == 2


async def test_lunch_break_is_not_working_time(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-16T11:50"))
    runtime, recorder = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path, "09:00-12:00,13:30-18:00"))
    await start(runtime, "lead_claim", 1, at("2026-03-16T11:50"))
    await fires_exactly_at(runtime, clock, recorder, at("2026-03-16T13:35"), 1)


async def test_stalled_deal_on_the_workday_clock(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-13T10:00"))
    runtime, recorder = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path))
    await start(runtime, "stalled_deal", 7, at("2026-03-13T10:00"), amount=600_000)
    await start(runtime, "stalled_deal", 8, at("2026-03-13T10:00"), amount=100_000)
    clock.set(at("2026-03-18T10:00") - SECOND)
    await sweep_timers(runtime.app)
    assert recorder.fired == []
    clock.set(at("2026-03-18T10:00"))
    await sweep_timers(runtime.app)
    assert sorted((s, lv) for _, s, lv, _ in recorder.fired) == [(7, 1), (8, 1)]
    clock.set(at("2026-03-19T10:00"))
    await sweep_timers(runtime.app)
    assert sorted((s, lv) for _, s, lv, _ in recorder.fired[2:]) == [(7, 2), (8, 2)]
    # the director level applies only from 500,000: six working days → Monday 03-23
    clock.set(at("2026-03-23T10:00"))
    await sweep_timers(runtime.app)
    assert [(s, lv) for _, s, lv, _ in recorder.fired[4:]] == [(7, 3)]


@pytest.mark.parametrize(
    ("due", "cards"),
    [
        ("2026-03-01T00:00", ["2026-03-16T09:30", "2026-03-31T09:30", "2026-04-15T09:30"]),
        ("2026-09-20T00:00", ["2026-10-08T09:30"]),  # 10-05 falls in the National Day week
    ],
)
async def test_receivable_cards_at_half_past_nine_on_working_days(
    make_runtime: RuntimeFactory, tmp_path: Path, due: str, cards: list[str]
) -> None:
    clock = FakeClock(at(due))
    runtime, recorder = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path))
    await start(runtime, "receivable", 3, at(due))
    for level, moment in enumerate(cards, start=1):
        await fires_exactly_at(runtime, clock, recorder, at(moment), level)


async def test_a_year_without_statutory_data_falls_back_and_alerts_ops_once(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    cal = calendar_dir(tmp_path, extra='extra_holidays = ["2027-01-01"]\n')
    clock = FakeClock(at("2026-12-31T17:50"))
    runtime, recorder = await timers_runtime(make_runtime, clock, cal)
    second = await make_runtime({"calendar": {"dir": str(cal)}}, clock=clock, org=None)
    await start(runtime, "lead_claim", 1, at("2026-12-31T17:50"))
    # 10 minutes on Thursday 12-31; Friday 2027-01-01 is an extra holiday; the fallback counts Mon–Fri
    await fires_exactly_at(runtime, clock, recorder, at("2027-01-04T09:05"), 1)
    assert 2027 in runtime.app.calendar.fallback_years_used
    for app in (runtime.app, second.app, runtime.app):
        await sweep_timers(app)
    alerts = await _outbox(runtime, OutboxRow.payload["tag"].as_string() == "calendar.fallback")
    assert [row.recipient for row in alerts] == ["sunyy"]
    assert "2027" in alerts[0].payload["card"]["title"]


async def test_after_downtime_only_the_highest_overdue_level_fires(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-16T08:45"))
    runtime, recorder = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path))
    await start(runtime, "lead_claim", 1, at("2026-03-16T08:45"))
    clock.set(at("2026-03-16T08:59"))
    await sweep_timers(runtime.app)
    # down from 09:00 to 11:00: the 09:15 reminder and the 11:00 expiry are both overdue
    clock.set(at("2026-03-16T11:00"))
    await sweep_timers(runtime.app)
    await sweep_timers(runtime.app)
    assert [lv for _, _, lv, _ in recorder.fired] == [2]
    rows = await _outbox(runtime)
    assert sorted(r.recipient for r in rows) == ["wang_jl", "zhangwei"]
    assert all(r.payload["card"]["title"] == "lead_claim 第2级" for r in rows)


async def test_pause_resume_and_reset(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-16T09:00"))
    runtime, recorder = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path))
    timer = await start(runtime, "lead_claim", 1, at("2026-03-16T09:00"))
    assert timer.due_at == at("2026-03-16T09:15")
    timers = runtime.app.timers
    async with runtime.app.sessions() as session:
        async with session.begin():
            row = await session.get(Timer, timer.id)
            assert row is not None
            # 10 of 15 minutes used; paused until Wednesday 14:00, 5 minutes are left then
            await timers.pause(session, row, at=at("2026-03-16T09:10"), until=at("2026-03-18T14:00"))
            assert row.state == "paused" and row.due_at == at("2026-03-18T14:05")
            version = row.version
    clock.set(at("2026-03-17T09:30"))
    await sweep_timers(runtime.app)
    assert recorder.fired == []
    await fires_exactly_at(runtime, clock, recorder, at("2026-03-18T14:05"), 1)
    async with runtime.app.sessions() as session:
        async with session.begin():
            row = await session.get(Timer, timer.id)
            assert row is not None and row.version > version
            # a counting activity starts the ladder over
            await timers.start(session, subject_type="test", subject_id=1, ladder="lead_claim", at=at("2026-03-18T15:00"))
            assert row.level == 0 and row.due_at == at("2026-03-18T15:15")


async def test_a_calendar_edit_recomputes_open_timers(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-13T17:50"))
    runtime, _ = await timers_runtime(make_runtime, clock, calendar_dir(tmp_path))
    await sweep_timers(runtime.app)  # records the calendar the due moments are computed with
    timer = await start(runtime, "lead_claim", 1, at("2026-03-13T17:50"))
    assert timer.due_at == at("2026-03-16T09:05")
    # ops declare Monday 03-16 a company holiday; a node starting with the edited calendar recomputes
    (tmp_path / "edited").mkdir()
    edited = calendar_dir(tmp_path / "edited", extra='extra_holidays = ["2026-03-16"]\n')
    second = await make_runtime({"calendar": {"dir": str(edited)}}, clock=clock, org=None)
    await sweep_timers(second.app)
    [row] = await _timers(second)
    assert row.due_at == at("2026-03-17T09:05") and row.version > timer.version


async def test_two_nodes_sweeping_a_thousand_due_timers_send_each_once(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-16T09:00"))
    cal = calendar_dir(tmp_path)
    first, recorder = await timers_runtime(make_runtime, clock, cal, timers={"batch": 50})
    second = await make_runtime({"calendar": {"dir": str(cal)}, "timers": {"batch": 50}}, clock=clock, org=None)
    second.app.timers._handlers.pop("lead_claim", None)
    second.app.timers.handle("lead_claim", recorder)
    async with first.app.sessions() as session:
        async with session.begin():
            for i in range(1000):
                await first.app.timers.start(session, subject_type="load", subject_id=i, ladder="lead_claim",
                                             at=at("2026-03-16T09:00"), attributes={"owner": "zhangwei"})
    clock.set(at("2026-03-16T09:15"))
    results = await asyncio.gather(*(sweep_timers(node.app) for node in (first, second, first, second)))
    assert sum(results) == 1000
    assert sorted(s for _, s, _, _ in recorder.fired) == list(range(1000))
    async with first.app.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxRow)) == 1000
        keys = (await session.scalars(select(OutboxRow.dedupe_key))).all()
    assert len(set(keys)) == 1000


async def test_twelve_alerts_within_ten_minutes_arrive_as_one_card(make_runtime: RuntimeFactory) -> None:
    clock = FakeClock(at("2026-03-16T10:00"))
    runtime = await make_runtime(clock=clock)
    h = Harness(runtime)
    for i in range(12):
        async with runtime.app.sessions() as session:
            async with session.begin():
                card = Card(title=f"商机停滞 {i + 1}", kind="alert", fields=(CardField("医院", f"第{i + 1}医院"),))
                await notify(runtime.app, session, "wang_jl", Reply(card=card), now=clock.now(), klass="deal", dedupe_key=f"t:{i}")
        clock.advance(timedelta(seconds=45))
    await h.settle()
    assert h.pushes("wang_jl") == []  # held for the merge window
    clock.set(at("2026-03-16T10:10"))
    await h.settle()
    [card] = h.pushes("wang_jl")
    assert "12条" in card and "商机停滞 1" in card and "商机停滞 12" in card
    # the same effect produced again is not sent again
    async with runtime.app.sessions() as session:
        async with session.begin():
            assert await notify(runtime.app, session, "wang_jl", Reply(text="x"), now=clock.now(), klass="deal", dedupe_key="t:3") == []


async def test_alerts_outside_working_hours_wait_for_the_opening(make_runtime: RuntimeFactory) -> None:
    clock = FakeClock(at("2026-03-13T20:00"))  # Friday evening
    runtime = await make_runtime(clock=clock)
    async with runtime.app.sessions() as session:
        async with session.begin():
            [row] = await notify(runtime.app, session, "zhangwei", Reply(text="逾期提醒"), now=clock.now(), klass="receivable")
            [urgent] = await notify(runtime.app, session, "zhangwei", Reply(text="新线索"), now=clock.now(), klass="lead_offer")
    opening = at("2026-03-16T09:00")
    assert opening <= row.next_attempt_at <= opening + timedelta(minutes=5)
    assert urgent.next_attempt_at == clock.now()  # lead offers do not wait


async def test_daily_cap_puts_the_rest_into_one_summary_card(make_runtime: RuntimeFactory) -> None:
    clock = FakeClock(at("2026-03-16T10:00"))
    runtime = await make_runtime({"alerts": {"daily_cap": 3, "merge_minutes": 0}}, clock=clock)
    for i in range(7):
        async with runtime.app.sessions() as session:
            async with session.begin():
                await notify(runtime.app, session, "lina", Reply(card=Card(title=f"提醒{i}")), now=clock.now(), klass=f"c{i}")
        clock.advance(timedelta(minutes=1))
    rows = [r for r in await _outbox(runtime) if r.status != "merged"]
    assert len(rows) == 4
    summary = [r for r in rows if r.merge_key == "summary"]
    assert len(summary) == 1 and "4条" in summary[0].payload["card"]["title"]
    assert summary[0].next_attempt_at.astimezone(SH) >= at("2026-03-17T09:00")


async def _timers(runtime: Runtime) -> list[Timer]:
    async with runtime.app.sessions() as session:
        return list((await session.scalars(select(Timer).order_by(Timer.id))).all())


async def _outbox(runtime: Runtime, *where: Any) -> list[OutboxRow]:
    async with runtime.app.sessions() as session:
        return list((await session.scalars(select(OutboxRow).where(*where).order_by(OutboxRow.id))).all())


async def test_a_held_alert_does_not_hold_back_replies_to_the_same_person(make_runtime: RuntimeFactory) -> None:
    clock = FakeClock(at("2026-03-16T10:00"))
    runtime = await make_runtime(clock=clock)
    h = Harness(runtime)
    async with runtime.app.sessions() as session:
        async with session.begin():
            await notify(runtime.app, session, "wang_jl", Reply(card=Card(title="商机停滞")), now=clock.now(), klass="deal")
    replies = await h.say("wang_jl", "#待办")
    assert replies, "the reply went out while the alert waits for its merge window"
    assert all("商机停滞" not in r for r in replies)
    clock.set(at("2026-03-16T10:10"))
    await h.settle()
    assert any("商机停滞" in p for p in h.pushes("wang_jl"))
