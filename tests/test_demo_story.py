"""The demo's stories, scripted as a person would type them (`genjin demo` with /as and /clock).

Each transcript must show every push at the step where it arrives, so the demo can be
followed line by line: a deal going quiet, the rep's card, the manager's card.
"""

from __future__ import annotations

import io
from datetime import datetime

from bot.chat import DemoControls, run_chat
from bot.clock import OffsetClock
from tests.conftest import RuntimeFactory
from tests.harness import SH


async def play(make_runtime: RuntimeFactory, start: datetime, lines: list[str], user: str = "zhangwei") -> list[str]:
    """The transcript, cut at each input line: element i is what the i-th line produced."""
    clock = OffsetClock(start)
    runtime = await make_runtime(clock=clock, workers=True)
    out = io.StringIO()
    marker = "\u241e"  # a line separator no reply contains
    script = io.StringIO("".join(f"{line}\n" for line in lines))

    class Marked(io.StringIO):
        def readline(self, *args: object) -> str:  # type: ignore[override]
            out.write(marker)
            return script.readline()

    code = await run_chat(runtime.app, user, stdin=Marked(), out=out, demo=DemoControls(clock, runtime.jobs.run_all))
    assert code == 0
    return out.getvalue().split(marker)[1:]


async def test_a_deal_goes_quiet_and_the_cards_reach_rep_then_manager(make_runtime: RuntimeFactory) -> None:
    steps = await play(make_runtime, datetime(2026, 3, 16, 10, 0, tzinfo=SH), [
        "今天去华山医院见了王主任，演示很顺利，金额大概80万",
        "/clock +3d",     # Thursday 10:00: three working days without activity
        "/clock +10m",    # the merge window passes: the rep's card arrives
        "/as wang_jl",
        "/clock +1d",     # Friday: the second level fires for the rep and the manager
        "/clock +10m",
        "#卡单",
    ])
    note, quiet, rep_card, _as, second, both, stalled = steps[:7]
    assert "已记录" in note
    assert "商机停滞" not in quiet and "合并等待中" in quiet and "2026-03-19 10:0" in quiet
    assert "【商机停滞：复旦大学附属华山医院】" in rep_card and "第1级" in rep_card
    assert "合并等待中" in second
    assert "→ 张伟: 【商机停滞" in both and "第2级" in both  # the rep, seen from the manager's chat
    assert both.count("第2级") == 2  # and the manager's own card
    assert "团队停滞商机" in stalled and "复旦大学附属华山医院" in stalled and "80万" in stalled


async def test_a_lead_is_ignored_reminded_reassigned_and_the_manager_told(make_runtime: RuntimeFactory) -> None:
    steps = await play(make_runtime, datetime(2026, 3, 17, 9, 0, tzinfo=SH), [
        "#线索 华山医院 心内科 王主任 13812345678 心血管 三甲 上海 官网咨询",
        "确认",
        "/clock +15m",    # 15 business minutes unclaimed: the reminder
        "/clock +2h",     # 120 minutes: the next rep gets it, the first is told
        "/clock +10m",    # the manager's card (merged alerts) arrives
    ], user="ma_sc")
    confirm, routed, reminder, reassigned, manager = steps[:5]
    assert "请确认这条线索" in confirm and "区域：上海" in confirm
    first = routed.split("→ ", 1)[1].split(":", 1)[0]
    assert "新线索待认领 #1" in routed and f"派给{first}" in routed
    assert f"→ {first}: 【⏰ 线索 #1 还未认领】" in reminder and "09:15" in reminder
    assert f"→ {first}: 线索 1（华山医院）超时未认领，已转派。" in reassigned
    second = reassigned.split("新线索待认领 #1")[0].rsplit("→ ", 1)[1].split(":", 1)[0]
    assert second != first
    assert "→ 王经理:" in manager and "线索" in manager
