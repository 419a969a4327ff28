"""Receivables: installments from the finance import and from notes (confirmed in one tap), cards at 09:30, partial payments."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.payments import run_import
from storage.models import Installment, OutboxRow, PaymentPlan, PaymentReceipt, Timer
from tests.conftest import RuntimeFactory
from tests.harness import Harness, rows
from tests.test_escalations import SECOND, at, calendar_dir, esc_harness, tick

HEADER = "发票号,医院,金额,到期日,已收金额,销售\n"


def csv_file(tmp_path: Path, body: str, name: str = "ar.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


async def receivable_cards(h: Harness) -> list[OutboxRow]:
    return [r for r in await rows(h, OutboxRow, OutboxRow.merge_key.is_not(None))
            if r.payload.get("tag") == "escalation.receivable"
            or any(i.get("tag") == "escalation.receivable" for i in r.context.get("items", []))]


async def imported(h: Harness, tmp_path: Path, body: str, name: str = "ar.csv") -> tuple[int, list[str], str]:
    return await run_import(h.app.config, csv_file(tmp_path, body, name))


@pytest.mark.parametrize(
    ("due", "cards"),
    [
        ("2026-03-01", ["2026-03-16T09:30", "2026-03-31T09:30", "2026-04-15T09:30"]),
        ("2026-09-20", ["2026-10-08T09:30"]),  # 10-05 falls in the National Day week
    ],
)
async def test_imported_invoice_escalates_at_half_past_nine(make_runtime: RuntimeFactory, tmp_path: Path, due: str,
                                                            cards: list[str]) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, f"{due}T08:00")
    await h.say("zhangwei", "今天拜访仁济医院王主任，预算80万")
    code, problems, _ = await imported(h, tmp_path, f"INV-1,仁济医院,500000,{due},0,zhangwei\n")
    assert code == 0, problems
    [timer] = await rows(h, Timer, Timer.subject_type == "installment")
    assert timer.ladder == "receivable"
    audiences = [["zhangwei"], ["wang_jl", "zhangwei"], ["qian_cw", "wang_jl", "zhangwei", "zhou_zj"]]
    for level, moment in enumerate(cards, start=1):
        before = len(await receivable_cards(h))
        await tick(h, clock, at(moment) - SECOND)
        assert len(await receivable_cards(h)) == before
        await tick(h, clock, at(moment))
        new = (await receivable_cards(h))[before:]
        assert sorted(r.recipient for r in new) == audiences[level - 1], (level, [r.recipient for r in new])
    await tick(h, clock, at(cards[0]) + (at(cards[-1]) - at(cards[0])) + SECOND * 600)
    assert any("回款逾期" in t and "仁济医院" in t and "50万" in t for t in h.pushes("zhangwei"))


async def test_import_is_all_or_nothing_and_idempotent(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, _clock = await esc_harness(make_runtime, tmp_path, "2026-03-02T10:00")
    await h.say("zhangwei", "今天拜访仁济医院王主任，预算80万")
    code, problems, summary = await imported(h, tmp_path, "INV-1,仁济医院,500000,2026-03-01,0,zhangwei\n"
                                                          "INV-2,仁济医院,abc,2026-03-01,0,zhangwei\n"
                                                          "INV-3,不存在医院,1000,2026-13-01,,\n")
    assert code == 1 and "未导入" in summary
    assert any("第3行" in p and "金额" in p for p in problems)
    assert any("第4行" in p and "医院" in p and "到期日" in p for p in problems)
    assert await rows(h, Installment) == [] and await rows(h, PaymentPlan) == []
    good = "INV-1,仁济医院,500000,2026-03-01,0,zhangwei\nINV-2,仁济医院,300000,2026-03-10,100000,zhangwei\n"
    assert (await imported(h, tmp_path, good))[0] == 0
    code, _, summary = await imported(h, tmp_path, good, "again.csv")
    assert code == 0 and "新增 0" in summary and "未变 2" in summary
    assert len(await rows(h, Installment)) == 2 and len(await rows(h, PaymentReceipt)) == 1


async def test_partial_payments_stop_the_ladder_at_the_full_amount(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-02T10:00")
    await h.say("zhangwei", "今天拜访仁济医院王主任，预算80万")
    assert (await imported(h, tmp_path, "INV-9,仁济医院,500000,2026-03-01,0,zhangwei\n"))[0] == 0
    replies = await h.say("zhangwei", "#回款 仁济医院 30万 已到账")
    assert any("到账 30万" in t and "已收 30万/50万" in t for t in replies), replies
    [inst] = await rows(h, Installment)
    assert inst.status == "partial"
    [timer] = await rows(h, Timer, Timer.subject_type == "installment")
    assert timer.state == "running" and timer.attributes["amount"] == 200_000
    replies = await h.say("zhangwei", "#回款 仁济医院 20万 已到账")
    assert any("已收齐" in t for t in replies), replies
    [inst] = await rows(h, Installment)
    [timer] = await rows(h, Timer, Timer.subject_type == "installment")
    assert inst.status == "paid" and inst.received_amount == 500_000 and timer.state == "cancelled"
    await tick(h, clock, at("2026-03-16T09:40"))
    assert await receivable_cards(h) == []


async def test_payment_terms_in_a_note_are_proposed_and_stored_only_after_the_tap(make_runtime: RuntimeFactory,
                                                                                 tmp_path: Path) -> None:
    h, clock = await esc_harness(make_runtime, tmp_path, "2026-03-02T10:00")
    await h.say("zhangwei", "仁济医院合同签了，金额100万，首付款30%，3月20号前付，余款验收后支付")
    cards = [t for t in h.pushes("zhangwei") if "回款计划待确认" in t]
    assert cards and "首付 30%" in cards[0] and "余款 70%" in cards[0] and "验收后" in cards[0]
    assert await rows(h, Installment) == []  # nothing is a fact before the tap
    note_id = int(cards[0].split("确认回款计划 N")[1].split("」")[0])
    replies = await h.say("zhangwei", f"确认回款计划 N{note_id}")
    assert any("回款计划已建立" in t for t in replies), replies
    assert await h.say("zhangwei", f"确认回款计划 N{note_id}") == []  # a repeated tap does nothing
    first, rest = await rows(h, Installment)
    assert (first.percent, str(first.due_date), rest.percent, rest.trigger) == (30.0, "2026-03-20", 70.0, "acceptance")
    [timer] = await rows(h, Timer, Timer.subject_type == "installment")
    assert timer.subject_id == first.id  # only the dated installment is watched
    assert await h.say("lina", f"确认回款计划 N{note_id}") == ["没有找到这条回款计划。"]
    _ = calendar_dir, clock
