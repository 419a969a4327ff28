"""Reports: scope on every surface, #团队 #漏斗 #健康 #审计, questions, digest once per week, charts, dashboard."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, text

from bot.clock import FakeClock
from bot.messages import Image, Reply
from handlers.reports import charts
from handlers.reports.digest import digest_due, send_weekly_digests
from handlers.reports.links import issue_link
from handlers.reports.queries import BUCKETS
from storage.db import transaction
from storage.models import DigestMark, Note, OutboxRow, Person
from storage.scope import scope_for
from tests.harness import SH, Harness, rows
from tests.reports_seed import seed

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=SH)  # a Thursday
SECRET = "test-secret"


@pytest.fixture
async def h(make_runtime: Any) -> Harness:
    runtime = await make_runtime({"dashboard": {"secret": SECRET}}, clock=FakeClock(NOW))
    harness = Harness(runtime)
    harness.seeded = await seed(runtime.app, NOW)  # type: ignore[attr-defined]
    return harness


async def person(h: Harness, key: str) -> Person:
    async with h.app.sessions() as s:
        found = await s.scalar(select(Person).where(Person.key == key))
        assert found is not None
        return found


async def test_scope_rules(h: Harness) -> None:
    people = {k: await person(h, k) for k in ("wang_jl", "zhou_zj", "zhangwei", "qian_cw")}
    async with h.app.sessions() as s:
        ids = {p.key: p.id for p in (await s.scalars(select(Person))).all()}
        wang = await scope_for(s, people["wang_jl"])
        assert wang.people == frozenset({ids[k] for k in ("wang_jl", "zhangwei", "lina", "chenjing")})
        assert (await scope_for(s, people["zhou_zj"])).people is None
        assert (await scope_for(s, people["zhangwei"])).people == frozenset({ids["zhangwei"]})
        fin = await scope_for(s, people["qian_cw"])
        north = h.seeded["opps"]["liuyang"][0]  # type: ignore[attr-defined]
        receivable_deal = h.seeded["opps"]["zhangwei"][0]  # type: ignore[attr-defined]
        assert await fin.can_see_opportunity(s, receivable_deal)
        assert not await fin.can_see_opportunity(s, north)
        assert not await wang.can_see_opportunity(s, north)


async def test_manager_tree_includes_sub_teams(h: Harness) -> None:
    async with transaction(h.app.sessions) as s:
        zhou = await s.scalar(select(Person).where(Person.key == "zhou_zj"))
        wang = await s.scalar(select(Person).where(Person.key == "wang_jl"))
        assert zhou is not None and wang is not None
        zhou.role = "manager"
        wang.manager_id = zhou.id  # wang reports to zhou: zhou sees wang's whole team
    zhou, lina, liuyang = [await person(h, k) for k in ("zhou_zj", "lina", "liuyang")]
    async with h.app.sessions() as s:
        scope = await scope_for(s, zhou)
    assert scope.people is not None
    assert lina.id in scope.people and liuyang.id not in scope.people


async def test_account_notes_do_not_cross_teams(h: Harness) -> None:
    [boss] = await h.say("wang_jl", "#客户 张伟的医院")
    assert "张伟的跟进记录" in boss
    [other] = await h.say("wang_jl", "#客户 刘洋的医院")
    assert "刘洋的跟进记录" not in other and "没有找到" in other
    [own] = await h.say("zhao_jl", "#客户 刘洋的医院")
    assert "刘洋的跟进记录" in own


async def test_team_card_is_scoped(h: Harness) -> None:
    [card] = await h.say("wang_jl", "#团队")
    assert "本周团队" in card and "张伟" in card and "李娜" in card
    assert "刘洋" not in card and "杨帆" not in card
    assert "逾期回款：1笔" in card and "认领3" in card
    [mine] = await h.say("zhangwei", "#团队")
    assert "张伟" in mine and "李娜" not in mine


async def test_funnel_equals_direct_sql_and_shows_last_week(h: Harness) -> None:
    out = await h.send(h.message("zhou_zj", "#漏斗"))
    [reply] = [d for d in out if d.recipient == "zhou_zj"]
    assert reply.out.reply.image is not None and reply.out.reply.image.data.startswith(b"\x89PNG")
    async with h.app.sessions() as s:
        counts = dict((await s.execute(text("SELECT stage, COUNT(*) FROM opportunities WHERE status = 'open' GROUP BY stage"))).all())
    lexicon = h.app.services.lexicon
    for group in lexicon.stages:
        if group.code in counts:
            assert f"{group.label}：{counts[group.code]}单" in reply.text, group.label
    # one deal per rep moved into its stage three days ago: last week it sat one stage earlier
    assert "较上周+" in reply.text and "较上周-" in reply.text
    [east] = await h.say("wang_jl", "#漏斗")
    assert sum(int(part.split("单")[0].split("：")[-1]) for part in east.splitlines() if "单 ·" in part) == 18


async def test_health_and_audit_refuse_other_teams_ids(h: Harness) -> None:
    north = h.seeded["opps"]["liuyang"][1]  # type: ignore[attr-defined]
    [refused] = await h.say("wang_jl", f"#健康 {north}")
    assert "没有找到" in refused
    [card] = await h.say("zhao_jl", f"#健康 {north}")
    assert "健康度" in card and "NEXT_STEP_OVERDUE −6: 下一步已逾期" in card and "STAKEHOLDERS −10: 还没有接触设备科、采购" in card
    assert card.count(f"\n#{north} ") == 3  # the top three penalties only
    [audit] = await h.say("wang_jl", f"#审计 {north}")
    assert "没有找到" in audit
    moved = h.seeded["opps"]["liuyang"][0]  # type: ignore[attr-defined]
    [trail] = await h.say("zhao_jl", f"#审计 {moved}")
    assert "刘洋" in trail and "阶段" in trail


async def test_stage_age_penalty_reads_like_the_spec(h: Harness) -> None:
    deal = h.seeded["opps"]["zhangwei"][2]  # type: ignore[attr-defined]
    [card] = await h.say("zhangwei", f"#健康 {deal}")
    assert "STAGE_AGE −" in card and "停留" in card and "(常见 " in card


@pytest.mark.parametrize(("who", "question", "expect"), [
    ("wang_jl", "哪些单子卡住了？", "卡住的商机"),
    ("wang_jl", "有没有逾期回款？", "逾期回款"),
    ("zhao_jl", "这周漏斗怎么样？", "销售漏斗"),
    ("zhangwei", "我这周跟进了多少？", "本周团队"),
    ("zhangwei", "你能做什么？", "#"),
])
async def test_questions_are_answered_never_filed(h: Harness, who: str, question: str, expect: str) -> None:
    before = len(await rows(h, Note))
    [reply] = await h.say(who, question)
    assert expect in reply
    assert len(await rows(h, Note)) == before


async def test_reported_question_is_still_a_note(h: Harness) -> None:
    before = len(await rows(h, Note))
    await h.say("zhangwei", "华山医院王主任问有没有优惠？周五前回复他。")
    assert len(await rows(h, Note)) == before + 1


async def test_digest_once_per_person_and_week(h: Harness) -> None:
    clock = h.app.clock
    assert isinstance(clock, FakeClock)
    clock.set(datetime(2026, 11, 30, 8, 50, tzinfo=SH))  # Monday, a working day
    results = await asyncio.gather(*(send_weekly_digests(h.app) for _ in range(3)))  # three "nodes"
    assert sum(results) == 3  # wang_jl, zhao_jl, zhou_zj
    assert await send_weekly_digests(h.app) == 0
    marks = await rows(h, DigestMark)
    assert sorted(m.key for m in marks) == ["digest:2026-W48:wang_jl", "digest:2026-W48:zhao_jl", "digest:2026-W48:zhou_zj"]
    await h.settle()
    wang = h.pushes("wang_jl")
    assert any("周报 2026-W48" in t and "最卡的商机" in t and "张伟" in t and "刘洋" not in t for t in wang)
    assert any("[图片" in t for t in wang)
    assert any("华东" in t and "华北" in t or "全公司" in t for t in h.pushes("zhou_zj"))
    images = [o for o in await rows(h, OutboxRow) if o.payload.get("image")]
    assert images and all(Reply.from_payload(o.payload).image.data.startswith(b"\x89PNG") for o in images)  # type: ignore[union-attr]


async def test_digest_day_follows_the_calendar(h: Harness) -> None:
    assert not digest_due(h.app, datetime(2026, 11, 30, 8, 40, tzinfo=SH))
    assert digest_due(h.app, datetime(2026, 11, 30, 8, 45, tzinfo=SH))
    assert not digest_due(h.app, datetime(2026, 12, 1, 9, 0, tzinfo=SH))  # Tuesday: Monday was the day
    assert not digest_due(h.app, datetime(2026, 10, 5, 9, 0, tzinfo=SH))  # National Day holiday Monday
    assert digest_due(h.app, datetime(2026, 10, 8, 9, 0, tzinfo=SH))  # first working day of that week


def test_every_chart_label_has_a_glyph() -> None:
    from nlp.lexicon import load_lexicon

    labels = [g.label for g in load_lexicon().stages] + [b[2] for b in BUCKETS]
    labels += ["销售漏斗", "逾期回款（万元）", "本周跟进条数", "华东大区·心血管组", "全公司", "张伟李娜陈静刘洋杨帆黄丽", "+3 · 120万"]
    for label in labels:
        assert charts.missing_glyphs(label) == "", label
    assert charts.missing_glyphs("\ue000") == "\ue000"  # the check can fail: a private-use code point has no glyph
    png = charts.funnel_png("销售漏斗", ["初步接触", "需求确认"], [3, 1])
    assert png.startswith(b"\x89PNG") and len(png) > 2000


def test_image_payload_round_trip() -> None:
    reply = Reply(image=Image(b"\x89PNG...", name="a.png", alt="图"))
    back = Reply.from_payload(reply.to_payload())
    assert back.image == reply.image and back.text == ""


async def _link(h: Harness, key: str) -> str:
    async with transaction(h.app.sessions) as s:
        p = await s.scalar(select(Person).where(Person.key == key))
        assert p is not None
        return (await issue_link(s, SECRET, p.id, h.app.clock.now(), 10)).token


async def test_dashboard_links_sessions_and_scope(make_runtime: Any) -> None:
    runtime = await make_runtime({"dashboard": {"secret": SECRET}}, clock=FakeClock(NOW), http=True)
    h = Harness(runtime)
    seeded = await seed(runtime.app, NOW)
    base = f"http://127.0.0.1:{runtime.port}"
    token = await _link(h, "wang_jl")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as web:  # unsafe: cookies for an IP host
        async with web.get(f"{base}/dash/") as r:
            assert r.status == 401
        async with web.get(f"{base}/dash/login", params={"t": token[:-2] + "xx"}) as r:
            assert r.status == 403  # tampered signature
        async with web.get(f"{base}/dash/login", params={"t": token}) as r:
            assert r.status == 200 and "总览" in await r.text() and "<img" in await r.text()
        own = seeded["opps"]["zhangwei"][0]
        async with web.get(f"{base}/dash/deals/{own}") as r:
            assert r.status == 200 and "健康度" in await r.text() and "修改记录" in await r.text()
        async with web.get(f"{base}/dash/deals/{seeded['opps']['zhangwei'][1]}") as r:
            page = await r.text()
            assert "DUE_PUSHED −5</b>：下一步已推迟1次" in page and "发方案" in page
        north = seeded["opps"]["liuyang"][0]
        async with web.get(f"{base}/dash/deals/{north}") as r:
            assert r.status == 404  # another team's deal id typed into the URL
        async with web.get(f"{base}/dash/deals") as r:
            page = await r.text()
            assert "张伟的医院" in page and "刘洋的医院" not in page
        async with web.get(f"{base}/dash/reps") as r:
            page = await r.text()
            assert "李娜" in page and "杨帆" not in page
    async with aiohttp.ClientSession() as web:
        async with web.get(f"{base}/dash/login", params={"t": token}) as r:
            assert r.status == 403 and "已使用" in await r.text()  # one use
    late = await _link(h, "wang_jl")
    runtime.app.clock.advance(timedelta(minutes=11))  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as web:
        async with web.get(f"{base}/dash/login", params={"t": late}) as r:
            assert r.status == 403 and "过期" in await r.text()


async def test_kanban_command_replies_with_a_link(h: Harness) -> None:
    [reply] = await h.say("wang_jl", "#看板")
    assert "/dash/login?t=" in reply
