"""Corrections and undo for the rep's last note: "阶段改成商务谈判", "不对，是下周四", "金额改成90万", "撤销".

Why explicit commands: the extractor will sometimes be wrong, and a rep must be able to fix
it in one short message without opening a CRM. Every correction is audited with the note
it belongs to; an explicit stage correction is the only way (besides ``lost``) to move a
deal backwards.
"""

from __future__ import annotations

import re

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.router import SKIP, HandlerContext, HandlerResult, Router, matches
from handlers.accounts.service import resolve_contact
from handlers.common.dates import local_now, parse_answer_date
from handlers.common.format import day_text, money, stage_label
from handlers.notes import unsure
from handlers.notes.dialog import (
    acceptable_hospital,
    file_under,
    needs_confirmation,
    stage_from_text,
)
from handlers.notes.dialog_state import CONFIRM_ACCOUNT, clear_pending, load_pending
from handlers.notes.extraction import extract, to_draft
from handlers.notes.service import (
    attach_account,
    last_note,
    note_rules,
    undo_note,
    update_fields,
)
from handlers.opportunities.service import set_amount, set_stage
from handlers.tasks.service import (
    OPEN,
    latest_reminded_task,
    policy,
    redate_task,
    task_for_note,
)
from nlp.numerals import to_number
from storage.audit import audit
from storage.models import Account, Note, Opportunity, Task

UNDO = r"^(?:撤销|撤回|撤消|删掉上一条|删除上一条|删了上一条)\s*(\d+)?\s*[。!！]?$"
STAGE = r"^(?:不对[，,。!！\s]*)?(?:把)?(?:阶段|商机阶段|项目阶段)(?:应该)?(?:改成|改为|改到|调整为|调成|更正为|设为|是|应该是)\s*(.+)$"
AMOUNT = r"^(?:不对[，,。!！\s]*)?(?:把)?(?:金额|总金额|总价|合同金额|项目金额)(?:应该)?(?:改成|改为|调整为|更正为|是|应该是)\s*(.+)$"
REDATE = r"^(?:截止|截止日期|日期|时间|下一步)(?:日期|时间)?(?:改成|改为|改到|换到|挪到|调到)\s*(.+)$"
CONTACT = r"^(?:不对[，,。!！\s]*)?(?:把)?(?:联系人|对接人|客户联系人|联系的人)(?:应该)?(?:改成|改为|换成|调整为|更正为|是|应该是)\s*(.+)$"
HOSPITAL = r"^(?:不对[，,。!！\s]*)?(?:把)?(?:医院|客户|医院名|客户名)(?:应该)?(?:改成|改为|换成|更正为|是|应该是)\s*(.+)$"
GENERAL = r"^(?:不对|不是|错了|更正|纠正|说错了)[，,。：:!！\s]+(.{1,16})$"

_MONEY = re.compile(r"([\d.]+|[零〇一二两三四五六七八九十百千]+(?:点[零〇一二两三四五六七八九]+)?)\s*(万|w|W|千|元|块)?")
NO_NOTE = "还没有可以更正的跟进记录。"


def _preview(note: Note) -> str:
    text = (note.raw_text or note.transcript or "").strip().replace("\n", " ")
    return text if len(text) <= 24 else text[:24] + "…"


def parse_amount(app: AppContext, raw: str, hc: HandlerContext) -> int | None:
    """"90万" / "九十万" / "865000" → yuan; the extractor first, a plain numeral as a fallback."""
    draft = to_draft(extract(app, raw, hc.now), raw)
    if draft.amount:
        return int(draft.amount)
    m = _MONEY.search(raw.replace(",", "").replace("，", ""))
    if m is None:
        return None
    value = to_number(m.group(1))
    if value is None or value <= 0:
        return None
    unit = m.group(2) or ("万" if value < 10_000 else "元")
    factor = {"万": 10_000, "w": 10_000, "W": 10_000, "千": 1_000}.get(unit, 1)
    return int(round(value * factor))


async def _note_opportunity(hc: HandlerContext, note: Note) -> Opportunity | None:
    return await hc.session.get(Opportunity, note.opportunity_id) if note.opportunity_id is not None else None


async def _deal_changed(app: AppContext, hc: HandlerContext, opp: Opportunity) -> None:
    """A correction is no counting activity: the deal's escalation timer only learns the new facts."""
    deals = note_rules(app).deals
    if deals is not None:
        await deals.changed(hc.session, opp, hc.now, hc.person.id)


async def correct_stage(app: AppContext, hc: HandlerContext, note: Note, code: str) -> str:
    old = (note.fields or {}).get("stage")
    opp = await _note_opportunity(hc, note)
    if old == code and (opp is None or opp.stage == code):
        return f"阶段已经是{stage_label(app, code)}，无需更正。"
    await audit(hc.session, actor_id=hc.person.id, entity="note", entity_id=note.id, field_name="stage",
                old=old, new=code, note_id=note.id, now=hc.now)
    update_fields(note, stage=code)
    if opp is not None:
        old = opp.stage
        await set_stage(hc.session, opp, code, stages=app.services.lexicon.stage_order, actor_id=hc.person.id, note_id=note.id,
                        now=hc.now, explicit=True)
        await _deal_changed(app, hc, opp)
    before = stage_label(app, old) or "（无）"
    return f"✅ 已更正阶段：{before} → {stage_label(app, code)}。"


async def correct_amount(app: AppContext, hc: HandlerContext, note: Note, amount: int) -> str:
    old = (note.fields or {}).get("amount")
    await audit(hc.session, actor_id=hc.person.id, entity="note", entity_id=note.id, field_name="amount",
                old=old, new=amount, note_id=note.id, now=hc.now)
    update_fields(note, amount=amount)
    unsure.settle(note, unsure.AMOUNT, unsure.FIXED)
    opp = await _note_opportunity(hc, note)
    if opp is not None:
        old = opp.amount
        await set_amount(hc.session, opp, amount, actor_id=hc.person.id, note_id=note.id, now=hc.now)
        await _deal_changed(app, hc, opp)
    before = money(old) or "（无）"
    return f"✅ 已更正金额：{before} → {money(amount)}。"


async def _task_to_redate(hc: HandlerContext, note: Note | None) -> Task | None:
    if note is not None:
        task = await task_for_note(hc.session, note.id)
        if task is not None and task.status == OPEN:
            return task
    return await latest_reminded_task(hc.session, hc.person.id)


async def correct_date(app: AppContext, hc: HandlerContext, note: Note | None, raw: str) -> str | None:
    task = await _task_to_redate(hc, note)
    if task is None:
        return None
    parsed = parse_answer_date(app, raw, hc.now, base=task.due_date)
    if parsed is None:
        return None
    today = local_now(app, hc.now).date()
    if parsed.due < today:
        return f"{parsed.due.month}月{parsed.due.day}日 已经过了，请给一个今天以后的日期。"
    old = task.due_date
    await redate_task(hc.session, task, parsed.due, parsed.due_at, actor_id=hc.person.id, policy=policy(app), now=hc.now)
    if note is not None and task.note_id == note.id:
        unsure.settle(note, unsure.DUE, unsure.FIXED)  # a date heard unsure in a memo, now said by the rep
    before = day_text(old, today=today) or "（无）"
    return f"✅ 已改期：{task.text}\n截止 {before} → {day_text(task.due_date, task.due_at, app=app, today=today)}"


async def _question_answered(hc: HandlerContext) -> None:
    """A correction closes an open question — except a confirmation ("确认建档吗？", unsure voice fields)
    while its note still holds something back: that still waits for yes, a name or another fix."""
    state = await load_pending(hc.session, hc.person.id, hc.now)
    if state is None:
        return
    if state.get("kind") == CONFIRM_ACCOUNT:
        note = await hc.session.get(Note, int(state.get("note_id") or 0))
        if note is not None and note.deleted_at is None and needs_confirmation(note):
            return
    await clear_pending(hc.session, hc.person.id)


def router(app: AppContext) -> Router:
    r = Router("notes.corrections")

    @r.on(matches(UNDO))
    async def undo(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        if match.group(1):
            note = await hc.session.get(Note, int(match.group(1)))
            if note is None or note.author_id != hc.person.id:
                return Reply(text=f"没有找到你的第 {match.group(1)} 条记录。")
            if note.deleted_at is not None:
                return Reply(text="这条记录已经撤销过了。")
        else:
            note = await last_note(hc.session, hc.person.id)
            if note is None:
                return Reply(text="没有可以撤销的跟进记录。")
        reverted = await undo_note(hc.session, note, actor_id=hc.person.id, now=hc.now)
        opp = await _note_opportunity(hc, note)
        if reverted and opp is not None:
            await _deal_changed(app, hc, opp)
        await clear_pending(hc.session, hc.person.id)
        parts = [f"↩️ 已撤销：{_preview(note)}"]
        if reverted:
            names = {"stage": "阶段", "amount": "金额", "status": "状态"}
            parts.append("已恢复商机" + "、".join(dict.fromkeys(names[f] for f in reverted)) + "。")
        return Reply(text="\n".join(parts), tag="note.undo")

    @r.on(matches(STAGE))
    async def stage(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        code = stage_from_text(app, match.group(1))
        if code is None:
            names = "、".join(g.label for g in app.services.lexicon.stages)
            return Reply(text=f"没认出“{match.group(1).strip()}”是哪个阶段。可选：{names}。")
        note = await last_note(hc.session, hc.person.id)
        if note is None:
            return Reply(text=NO_NOTE)
        await _question_answered(hc)
        return Reply(text=await correct_stage(app, hc, note, code), tag="note.correct")

    @r.on(matches(AMOUNT))
    async def amount(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        value = parse_amount(app, match.group(1), hc)
        if value is None:
            return Reply(text="没看懂金额，请写成“金额改成90万”这样。")
        note = await last_note(hc.session, hc.person.id)
        if note is None:
            return Reply(text=NO_NOTE)
        await _question_answered(hc)
        return Reply(text=await correct_amount(app, hc, note, value), tag="note.correct")

    @r.on(matches(REDATE))
    async def redate(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        note = await last_note(hc.session, hc.person.id)
        answer = await correct_date(app, hc, note, msg.text.strip())
        if answer is None:
            return Reply(text="没找到可以改期的待办，或没看懂日期（例如“截止改成下周四”）。")
        await _question_answered(hc)
        return Reply(text=answer, tag="note.correct")

    @r.on(matches(CONTACT))
    async def contact(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        """"联系人改成王主任": the note's main contact, never a new note."""
        rest = match.group(1).strip().strip("，。,.!！")
        draft = to_draft(extract(app, rest, hc.now), rest)
        name = draft.contacts[0] if draft.contacts else (rest if 0 < len(rest) <= 8 else "")
        if not name:
            return Reply(text="没看懂联系人，请写成“联系人改成王主任”这样。")
        note = await last_note(hc.session, hc.person.id)
        if note is None:
            return Reply(text=NO_NOTE)
        await _question_answered(hc)
        return Reply(text=await _correct_contact(hc, note, name), tag="note.correct")

    @r.on(matches(HOSPITAL))
    async def hospital(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        """"医院改成仁济医院": refile the last note (what it changed elsewhere is reverted)."""
        rest = match.group(1).strip().strip("，。,.!！")
        draft = to_draft(extract(app, rest, hc.now), rest)
        name = draft.account or rest
        if not acceptable_hospital(app, name):
            return Reply(text=f"“{name}”不像医院名称，请写成“医院改成复旦大学附属华山医院”这样。")
        note = await last_note(hc.session, hc.person.id)
        if note is None:
            return Reply(text=NO_NOTE)
        await _question_answered(hc)
        return Reply(text=await file_under(app, hc, note, name), tag="note.correct")

    @r.on(matches(GENERAL))
    async def general(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        """"不对，是下周四" / "不对，是李主任" / "不是，是华山医院" — short fixes of the last note."""
        text, rest = match.string, match.group(1)
        whole = to_draft(extract(app, text, hc.now), text)
        if whole.concerns or whole.action_text and not whole.due:
            return SKIP  # reads like a new note that happens to start with "不是"
        note = await last_note(hc.session, hc.person.id)
        if note is None:
            return SKIP
        draft = to_draft(extract(app, rest, hc.now), rest)
        code = stage_from_text(app, re.sub(r"^(?:是|应该是|改成|改为)", "", rest))
        if code is not None and len(rest) <= 8:
            answer = await correct_stage(app, hc, note, code)
        elif draft.amount and re.search(r"万|元|块", rest):
            answer = await correct_amount(app, hc, note, int(draft.amount))
        elif (dated := await correct_date(app, hc, note, text)) is not None:
            answer = dated
        elif draft.contacts:
            answer = await _correct_contact(hc, note, draft.contacts[0])
        elif draft.account:
            account, _ = await attach_account(hc.session, note, draft.account, actor_id=hc.person.id,
                                              rules=note_rules(app), now=hc.now)
            update_fields(note, account=draft.account, account_pending=None)
            unsure.settle(note, unsure.ACCOUNT, unsure.FIXED)
            answer = f"✅ 已更正医院：{account.name}。"
            state = await load_pending(hc.session, hc.person.id, hc.now)
            if state is not None and state.get("kind") == CONFIRM_ACCOUNT:
                await clear_pending(hc.session, hc.person.id)
        elif parse_answer_date(app, text, hc.now) is not None:
            answer = "上一条记录没有待办，没法改日期。可以直接说“明天把报价发给王主任”这样新建。"
        else:
            return SKIP
        await _question_answered(hc)
        return Reply(text=answer, tag="note.correct")

    return r


async def _correct_contact(hc: HandlerContext, note: Note, name: str) -> str:
    fields = note.fields or {}
    old = list(fields.get("contacts") or [])
    department = (fields.get("departments") or [""])[0]
    contact = await resolve_contact(hc.session, note.account_id, name, department, now=hc.now)
    await audit(hc.session, actor_id=hc.person.id, entity="note", entity_id=note.id, field_name="contacts",
                old=",".join(old), new=name, note_id=note.id, now=hc.now)
    note.contact_id = contact.id
    update_fields(note, contacts=[name, *[c for c in old[1:] if c != name]])
    unsure.settle(note, unsure.CONTACTS, unsure.FIXED)
    account = await hc.session.get(Account, note.account_id) if note.account_id else None
    where = f"（{account.name}）" if account else ""
    return f"✅ 已更正联系人：{'、'.join(old) or '（无）'} → {name}{where}。"
