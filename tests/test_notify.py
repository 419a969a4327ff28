"""notify(): one path to people — identities resolved, teams and roles expanded, nothing dropped silently."""

from __future__ import annotations

from sqlalchemy import select

from bot.messages import Reply
from bot.pipeline.notify import UNROUTABLE, ToRole, ToTeam, notify
from storage.models import OutboxRow, Person
from storage.people import route_to
from tests.harness import Harness


async def _notify(h: Harness, to: object, **kw: object) -> list[OutboxRow]:
    async with h.app.sessions() as session:
        async with session.begin():
            return await notify(h.app, session, to, Reply(text="通知"), now=h.app.clock.now(), **kw)  # type: ignore[arg-type]


async def test_a_team_is_its_active_members_each_as_an_app_message(harness: Harness) -> None:
    rows = await _notify(harness, ToTeam("east"))
    assert sorted(r.recipient for r in rows) == ["chenjing", "lina", "wang_jl", "zhangwei"]
    assert all(r.platform == "local" and r.status == "pending" for r in rows)
    managers = await _notify(harness, ToTeam("east", role="manager"))
    assert [r.recipient for r in managers] == ["wang_jl"]


async def test_a_role_reaches_everyone_with_it(harness: Harness) -> None:
    rows = await _notify(harness, ToRole("sales_ops"))
    assert [r.recipient for r in rows] == ["sunyy"]


async def test_whoever_cannot_be_reached_is_recorded_not_dropped(harness: Harness) -> None:
    [unknown] = await _notify(harness, "nobody")
    assert unknown.status == UNROUTABLE and "unknown person" in unknown.last_error
    [empty] = await _notify(harness, ToRole("auditor"))
    assert empty.status == UNROUTABLE and "nobody active" in empty.last_error
    async with harness.app.sessions() as session:
        async with session.begin():
            lina = await session.scalar(select(Person).where(Person.key == "lina"))
            assert lina is not None
            lina.active = False
    [inactive] = await _notify(harness, "lina")
    assert inactive.status == UNROUTABLE and inactive.last_error == "inactive"
    await harness.settle()
    assert harness.pushes("lina") == []


def test_group_robots_never_carry_messages_for_a_person() -> None:
    person = Person(key="zhangwei", name="张伟", role="rep", wecom_userid="ZhangWei", dingtalk_staff_id="rep-001", last_platform="")
    assert route_to(person, ["wecom_robot", "dingtalk_robot", "wecom"]) == ("wecom", "ZhangWei")
    assert route_to(person, ["wecom_robot", "dingtalk_robot"]) is None
