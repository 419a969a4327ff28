"""The demo's /as and /clock lines: speak as someone else, move time, see what the jobs pushed."""

from __future__ import annotations

import io
from datetime import datetime

from bot.chat import DemoControls, run_chat
from bot.clock import OffsetClock
from tests.conftest import RuntimeFactory
from tests.harness import SH


async def _script(make_runtime: RuntimeFactory, lines: list[str], *, demo: bool = True) -> str:
    clock = OffsetClock(datetime(2026, 3, 16, 9, 0, tzinfo=SH))
    runtime = await make_runtime(clock=clock, workers=True)
    out = io.StringIO()
    controls = DemoControls(clock, runtime.jobs.run_all) if demo else None
    code = await run_chat(runtime.app, "zhangwei", stdin=io.StringIO("\n".join(lines) + "\n"), out=out, demo=controls)
    assert code == 0
    return out.getvalue()


async def test_clock_moves_time_runs_jobs_and_shows_pushes_to_others(make_runtime: RuntimeFactory) -> None:
    text = await _script(make_runtime, [
        "今天去华山医院见了王主任，下周三前把报价发给他",
        "/clock",
        "/as wang_jl",
        "/clock +9d",
        "/as zhangwei",
        "完成",
    ])
    assert "⏱ 现在是 2026-03-16 09:" in text
    assert "你现在是 王经理（wang_jl）" in text
    reminder = text.index("→ 张伟: 【⏰ 跟进提醒】")
    assert "⏱ 现在是 2026-03-25 09:" in text[reminder:]
    assert "已完成" in text[reminder:]


async def test_as_refuses_unknown_people_and_clock_needs_a_duration(make_runtime: RuntimeFactory) -> None:
    text = await _script(make_runtime, ["/as nobody", "/clock +soon"])
    assert "组织里没有 nobody" in text and "用法：/clock +20m" in text


async def test_outside_the_demo_the_controls_are_refused(make_runtime: RuntimeFactory) -> None:
    text = await _script(make_runtime, ["/clock +2h", "/as wang_jl"], demo=False)
    assert text.count("只在演示") == 2
