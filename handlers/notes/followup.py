"""Messages that are not a new note on their own: a follow-up to the previous note, small talk,
and text with no customer and no action ("not recorded", with one-tap ways to record it).

Why: a rep writes in bursts. "下周五之前约他再聊一次" right after a note about 新华医院 is
about 新华医院; filing it as a new hospital-less note (and asking "是哪家医院？") is noise.
Text the bot cannot place is never silently swallowed and never silently stored: the rep
is told, once, and can record it as a plain note or name the hospital with one tap.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.router import HandlerContext, HandlerResult, Router, matches
from cards.model import Button, Card
from handlers.common.dates import local_now
from handlers.common.format import day_text, money, stage_label
from handlers.notes.dialog import ask_next
from handlers.notes.dialog_state import (
    MISSING,
    UNFILED,
    clear_pending,
    load_pending,
    set_pending,
)
from handlers.notes.extraction import extract, is_chatter, to_draft
from handlers.notes.models import NoteDraft
from handlers.notes.recording import record_and_card
from handlers.notes.service import last_note, note_rules, update_fields
from handlers.opportunities.service import apply_to_opportunity
from handlers.tasks.service import create_task, policy
from storage.audit import audit
from storage.models import Account, Note, Opportunity

RECORD_PLAIN = "记录成备注"
ADD_HOSPITAL = "补充医院"
UNFILED_TEXT = "这条里没找到客户或要做的事，还没有记录。\n可以点「记录成备注」原样记下，点「补充医院」告诉我是哪家医院，或发 #帮助 看看我能做什么。"
UNFILED_AGAIN = "这条也没找到客户或要做的事，没有记录。"
CHATTER_REPLY = "好的 👌"
GREETING_REPLY = "你好！直接把拜访情况发给我（文字或语音）就能记录，例如“今天去华山医院见了王主任，周五前发报价”。发 #帮助 看看我能做什么。"
SMALL_TALK_REPLY = "😄 这条我就不记录了。有客户跟进随时发我，发 #帮助 看看我能做什么。"
_GREETING = re.compile(r"(?i)^(?:你好|您好|hi|hello|hey|嗨|哈喽|早上好|上午好|下午好|晚上好|早安|在吗|在不在)[呀啊呢吗！!。.~～\s]*$")
# a question about the bot itself: left to the fallback, which answers with the help card
_ABOUT_BOT = re.compile(r"(?i)^(?:help|帮助|帮忙|菜单|menu|怎么用|使用说明|说明书?|功能|教程|\?|？)[?？!！。.\s]*$"
                        r"|你(?:能|会|可以)|能干啥|能做什么|能干什么|有什么功能|怎么用|怎么记录?|你是谁|你是干什么的|怎么操作")
_SMALL_TALK_MAX = 10


def about_the_bot(text: str) -> bool:
    return _ABOUT_BOT.search(text.strip()) is not None


async def small_talk(app: AppContext, hc: HandlerContext, text: str) -> HandlerResult:
    """Text with nothing to record: chatter and greetings get a short friendly line, questions the help card."""
    from bot.router import SKIP

    if about_the_bot(text):
        return SKIP  # the fallback answers with the help card
    if is_chatter(app, text):
        return Reply(text=CHATTER_REPLY, tag="note.chatter")
    if _GREETING.match(text.strip()):
        return Reply(text=GREETING_REPLY, tag="note.chatter")
    if len(text.strip()) <= _SMALL_TALK_MAX and not re.search(r"\d", text):
        return Reply(text=SMALL_TALK_REPLY, tag="note.chatter")
    return await unfiled(app, hc, text, source="text")


async def unfiled(app: AppContext, hc: HandlerContext, text: str, *, source: str) -> Reply:
    """No customer and no action: say so once, with buttons; a second such message gets one line."""
    state = await load_pending(hc.session, hc.person.id, hc.now)
    again = state is not None and state.get("kind") == UNFILED
    await set_pending(hc.session, hc.person.id, {"kind": UNFILED, "text": text, "source": source},
                      now=hc.now, window_minutes=app.config.notes.question_window_minutes)
    if again:
        return Reply(text=UNFILED_AGAIN + f"要记下来请回复「{RECORD_PLAIN}」。", tag="note.unfiled")
    card = Card(
        title="没有记录",
        kind="unfiled",
        blocks=(UNFILED_TEXT,),
        buttons=(Button(RECORD_PLAIN, command=RECORD_PLAIN, primary=True), Button(ADD_HOSPITAL, command=ADD_HOSPITAL),
                 Button("#帮助", command="#帮助")),
    )
    return Reply(card=card, tag="note.unfiled")


async def add_to_previous(app: AppContext, hc: HandlerContext, draft: NoteDraft) -> Reply | None:
    """A hospital-less message right after a note ("下周五之前约他再聊一次") completes that note.

    Within ``[notes] followup_window_minutes`` of the rep's previous note, and only when it
    names no other person than that note did. Returns None when it is not a follow-up.
    """
    window = app.config.notes.followup_window_minutes
    if window <= 0:
        return None
    previous = await last_note(hc.session, hc.person.id)
    if previous is None or previous.created_at < hc.now - timedelta(minutes=window):
        return None
    fields = dict(previous.fields or {})
    if draft.contacts and not set(draft.contacts) <= set(fields.get("contacts") or []):
        return None
    if not (draft.action_text or draft.stage or draft.concerns or draft.amount or draft.competitors or draft.products):
        return None
    today = local_now(app, hc.now).date()
    lines: list[str] = []
    opp = await hc.session.get(Opportunity, previous.opportunity_id) if previous.opportunity_id else None
    if draft.stage or draft.amount:
        if opp is not None:
            await apply_to_opportunity(hc.session, opp, stage=draft.stage, amount=draft.amount,
                                       stages=note_rules(app).stages, actor_id=hc.person.id, note_id=previous.id, now=hc.now)
        if draft.stage:
            fields["stage"] = draft.stage
            lines.append(f"阶段 {stage_label(app, draft.stage)}")
        if draft.amount:
            fields["amount"] = draft.amount
            lines.append(f"金额 {money(draft.amount)}")
    for name in ("concerns", "competitors", "products"):
        new = [v for v in getattr(draft, name) if v not in (fields.get(name) or [])]
        if new:
            fields[name] = [*(fields.get(name) or []), *new]
    if draft.concerns:
        from handlers.common.format import concern_labels

        lines.append("关注点 " + "、".join(concern_labels(app, draft.concerns)))
    if draft.action_text:
        in_past = draft.due is not None and (draft.past or draft.due < today)
        task = await create_task(
            hc.session, owner_id=hc.person.id, note=previous, opportunity_id=previous.opportunity_id,
            text=draft.action_text, due=draft.due, due_at=draft.due_at, remind=not in_past, policy=policy(app), now=hc.now,
        )
        line = f"下一步 {task.text}"
        if task.due_date is not None:
            line += f"，截止 {day_text(task.due_date, task.due_at, app=app, today=today)}"
        lines.append(line)
    fields["followups"] = [*(fields.get("followups") or []), draft.text]
    previous.fields = fields
    await audit(hc.session, actor_id=hc.person.id, entity="note", entity_id=previous.id, field_name="followup",
                old=None, new=draft.text[:200], note_id=previous.id, now=hc.now)
    where = await _where(hc, previous)
    question = await ask_next(app, hc.session, previous, None, person_id=hc.person.id, now=hc.now) \
        if not draft.action_text else ""
    reply = f"✅ 已补充到 {where} 的记录：" + "；".join(lines) + "。"
    if question:
        reply += f"\n❓ {question}"
    reply += "\n（不是同一件事？回复「撤销」撤掉整条，或带上医院名重新发。）"
    return Reply(text=reply, tag="note.followup")


async def _where(hc: HandlerContext, note: Note) -> str:
    if note.account_id is not None:
        account = await hc.session.get(Account, note.account_id)
        if account is not None:
            return account.name
    pending = (note.fields or {}).get("account_pending")
    return f"{pending}（待确认）" if pending else "上一条"


def router(app: AppContext) -> Router:
    r = Router("notes.followup")

    @r.on(matches(rf"^(?:{RECORD_PLAIN}|{ADD_HOSPITAL})[。!！]?$"))
    async def file_it(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        state = await load_pending(hc.session, hc.person.id, hc.now)
        if state is None or state.get("kind") != UNFILED:
            return Reply(text="没有等待记录的消息了（已超时或已处理）。请重新发一遍要记录的内容。")
        await clear_pending(hc.session, hc.person.id)
        text = str(state.get("text") or "")
        draft = to_draft(extract(app, text, hc.now), text, source=str(state.get("source") or "text"))
        draft.missing = []  # a plain note: no questions
        reply = await record_and_card(app, hc, draft, title="已记录（备注）")
        if msg.text.strip().startswith(ADD_HOSPITAL):
            note = await last_note(hc.session, hc.person.id)
            assert note is not None
            update_fields(note, asked=["account"])
            await set_pending(hc.session, hc.person.id, {"kind": MISSING, "note_id": note.id, "field": "account"},
                              now=hc.now, window_minutes=app.config.notes.question_window_minutes)
            return [reply, Reply(text="❓ 是哪家医院？", tag="note.question")]
        return reply

    return r


