"""Lead cards: the offer (认领 · 转派 · 退回 · 详情), outcomes, the manager queue, lists, confirmation.

Every button carries a typed command with the lead id ("认领 12", "退回 12 重复"), so an
old card still acts on the right lead and the server re-checks who is clicking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cards.model import Button, Card, CardField

if TYPE_CHECKING:
    from handlers.leads.intake import LeadInput
    from storage.models import Lead, Person

STATUS_LABELS = {
    "quarantined": "待补全", "offered": "待认领", "claimed": "已认领", "merged": "已合并",
    "manager_queue": "待经理分配", "returned": "已退回待核对", "new": "处理中",
}
OFFER_LABELS = {"offered": "待认领", "claimed": "已认领", "expired": "超时", "returned": "退回",
                "reassigned": "转派/指派", "lost_race": "认领未成功"}
RETURN_REASONS = ("重复", "信息错误", "不在我的区域")


def masked(phone: str) -> str:
    """138****5678 before the claim: enough to recognise, not to call around the system."""
    if len(phone) == 11 and phone.isdigit():
        return f"{phone[:3]}****{phone[-4:]}"
    return phone[:-4] + "****" if len(phone) > 6 else phone


def _facts(lead: Lead, *, full_phone: bool = False) -> list[CardField]:
    fields = [CardField("医院", lead.hospital or "（未填）")]
    for label, value in (("科室", lead.department), ("联系人", lead.contact),
                         ("电话", lead.phone if full_phone else masked(lead.phone)),
                         ("产品线", lead.product_line), ("等级", lead.grade), ("区域", lead.region),
                         ("来源", lead.source)):
        if value:
            fields.append(CardField(label, value))
    return fields


def offer_card(lead: Lead, why: str) -> Card:
    n = lead.id
    return Card(
        title=f"🆕 新线索待认领 #{n}",
        kind="lead_offer",
        fields=(*_facts(lead), CardField("为什么是你", why)),
        blocks=("请在 15 分钟（工作时间）内认领，超时会转派给同事。",),
        buttons=(
            Button("认领", command=f"认领 {n}", primary=True),
            Button("转派", command=f"转派 {n}"),
            Button("退回", command=f"退回 {n}"),
            Button("详情", command=f"详情 {n}"),
        ),
        meta={"lead_id": str(n)},
    )


def reminder_card(lead: Lead) -> Card:
    return Card(
        title=f"⏰ 线索 #{lead.id} 还未认领",
        kind="lead_offer",
        fields=tuple(_facts(lead)[:3]),
        blocks=("再不认领将转派给同事。",),
        buttons=(Button("认领", command=f"认领 {lead.id}", primary=True), Button("退回", command=f"退回 {lead.id}")),
        meta={"lead_id": str(lead.id)},
    )


def claimed_card(lead: Lead) -> Card:
    return Card(
        title=f"✅ 已认领线索 #{lead.id}",
        kind="lead",
        fields=tuple(_facts(lead, full_phone=True)),
        blocks=("已建商机（初次接触）。联系后直接发跟进记录，会记到这家医院的商机上。",),
        meta={"lead_id": str(lead.id)},
    )


def assigned_card(lead: Lead, manager: Person) -> Card:
    return Card(
        title=f"📌 {manager.name} 指派给你线索 #{lead.id}",
        kind="lead",
        fields=tuple(_facts(lead, full_phone=True)),
        blocks=("已建商机（初次接触）。联系后直接发跟进记录即可。",),
        meta={"lead_id": str(lead.id)},
    )


def return_reasons_card(lead: Lead) -> Card:
    return Card(
        title=f"退回线索 #{lead.id} 的原因？",
        kind="question",
        blocks=("也可以直接回复“退回 编号 原因”。",),
        buttons=tuple(Button(r, command=f"退回 {lead.id} {r}") for r in RETURN_REASONS),
    )


def expired_notice_card(lead: Lead, rep: Person, new_holder: str) -> Card:
    return Card(
        title=f"线索 #{lead.id} 超时未认领，已转派",
        kind="alert",
        fields=(CardField("医院", lead.hospital), CardField("超时", rep.name), CardField("转派给", new_holder)),
    )


def queue_card(lead: Lead, reps: Sequence[Person]) -> Card:
    reason = str((lead.decision or {}).get("reason", ""))
    return Card(
        title=f"📥 线索 #{lead.id} 待经理分配",
        kind="lead_queue",
        fields=(*_facts(lead), CardField("原因", reason)),
        blocks=(f"回复“指派 {lead.id} 给 姓名”，或点下面的按钮。",),
        buttons=tuple(Button(f"指派{p.name}", command=f"指派 {lead.id} 给 {p.key}") for p in reps[:5]),
        meta={"lead_id": str(lead.id)},
    )


def quarantine_card(lead: Lead) -> Card:
    return Card(
        title=f"⚠️ 线索 #{lead.id} 已隔离，待补全",
        kind="alert",
        fields=(*_facts(lead, full_phone=True), CardField("问题", "；".join(lead.problems or []))),
        blocks=("补全后请重新录入（#线索 或 genjin leads import）。",),
    )


def review_card(lead: Lead, rep: Person, reason: str) -> Card:
    return Card(
        title=f"🔁 线索 #{lead.id} 被退回：疑似重复",
        kind="alert",
        fields=(*_facts(lead, full_phone=True), CardField("退回人", rep.name), CardField("原因", reason)),
        blocks=("请核对是否与已有线索重复；不重复的请“指派 编号 给 姓名”。",),
        buttons=(Button("详情", command=f"详情 {lead.id}"),),
    )


def duplicate_card(into: Lead, new: Lead) -> Card:
    return Card(
        title=f"🔁 线索 #{into.id} 又来了一次",
        kind="alert",
        fields=(CardField("医院", into.hospital), CardField("新来源", new.source or "未知"),
                CardField("已合并", f"#{new.id} → #{into.id}")),
        blocks=("同一医院和电话（或联系人）的线索在 90 天内再次出现，已合并到你的线索，说明客户仍有兴趣。",),
    )


def _line(lead: Lead, holder: str = "") -> str:
    who = f" · {holder}" if holder else ""
    what = " ".join(x for x in (lead.department, lead.contact, lead.product_line) if x)
    return f"#{lead.id} {lead.hospital} {what}（{STATUS_LABELS.get(lead.status, lead.status)}{who}）"


def rep_list_card(offers: Sequence[Lead], untouched: Sequence[Lead]) -> Card | str:
    if not offers and not untouched:
        return "目前没有待认领或待跟进的线索 👍"
    lines = [f"待认领：{_line(lead)}" for lead in offers] + [f"已认领未跟进：{_line(lead)}" for lead in untouched]
    buttons = tuple(Button(f"认领 {lead.id}", command=f"认领 {lead.id}") for lead in offers[:3])
    return Card(title="我的线索", kind="lead_list", subtitle=f"待认领 {len(offers)} 条，已认领未跟进 {len(untouched)} 条",
                blocks=tuple(lines), buttons=buttons)


def team_list_card(title: str, leads: Sequence[tuple[Lead, str]]) -> Card | str:
    if not leads:
        return "目前没有未处理的线索 👍"
    queued = [lead for lead, _ in leads if lead.status == "manager_queue"]
    return Card(title=title, kind="lead_list", subtitle=f"共 {len(leads)} 条，待分配 {len(queued)} 条",
                blocks=tuple(_line(lead, holder) for lead, holder in leads),
                buttons=tuple(Button(f"详情 {lead.id}", command=f"详情 {lead.id}") for lead in queued[:3]))


def detail_card(lead: Lead, holder: str, history: Sequence[str]) -> Card:
    decision = lead.decision or {}
    fields = [*_facts(lead, full_phone=lead.status == "claimed"), CardField("状态", STATUS_LABELS.get(lead.status, lead.status))]
    if holder:
        fields.append(CardField("负责人", holder))
    if decision.get("reason"):
        fields.append(CardField("分配依据", str(decision["reason"])))
    skipped = [f"{rep or '—'}：{why}" for rep, why in decision.get("skipped", [])][:5]
    return Card(title=f"线索 #{lead.id} 详情", kind="lead", fields=tuple(fields),
                blocks=tuple([*(["跳过：" + "；".join(skipped)] if skipped else []), *history]))


def confirm_card(lead: LeadInput, problems: Sequence[str]) -> Card:
    fields = [CardField("医院", lead.hospital or "（未识别）")]
    for label, value in (("科室", lead.department), ("联系人", lead.contact), ("电话", lead.phone),
                         ("产品线", lead.product_line), ("等级", lead.grade), ("区域", lead.region)):
        fields.append(CardField(label, value or "—"))
    blocks = ["确认无误后将按规则分配给销售。"]
    if problems:
        blocks.insert(0, "⚠️ " + "；".join(problems) + "（确认后会进入待补全，不会派发）")
    return Card(title="请确认这条线索", kind="question", fields=tuple(fields), blocks=tuple(blocks),
                buttons=(Button("确认", command="确认", primary=True), Button("取消", command="取消")))
