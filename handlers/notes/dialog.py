"""Follow-up questions about a note, and reading the rep's answers.

Why so restrained: a bot that interrogates gets muted. For each note the bot asks at most
two questions, one at a time, never the same one twice, and only within a short window
(``[notes] question_window_minutes``). If the next message is clearly a new note rather
than an answer, the question is dropped silently, never repeated.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.router import SKIP, HandlerContext, HandlerResult, Router, matches, text
from cards.model import Button, Card
from handlers.accounts.service import find_account, get_account, resolve_contact
from handlers.common.dates import local_now, parse_answer_date
from handlers.common.format import day_text, money, stage_label
from handlers.notes.dialog_state import (
    CONFIRM_ACCOUNT,
    MISSING,
    PAST_DUE,
    clear_pending,
    load_pending,
    set_pending,
)
from handlers.notes.extraction import extract, is_chatter, to_draft
from handlers.notes.models import NoteDraft
from handlers.notes.service import attach_account, note_rules, update_fields
from handlers.notes.unsure import (
    ACCOUNT,
    AMOUNT,
    CONFIRMED,
    CONTACTS,
    DUE,
    FIXED,
    fix_examples,
    held,
    held_due,
    held_lines,
    settle,
    settled,
    settled_reply,
)
from handlers.opportunities.service import set_amount, set_stage
from handlers.tasks.service import OPEN, create_task, policy, redate_task, task_for_note
from storage.audit import audit
from storage.models import Note, Opportunity, Task

MAX_QUESTIONS = 2
# Fields answered implicitly by what the note row already holds.
_YES = re.compile(r"^(?:是|对|是的|对的|没错|嗯+|好|好的|行|可以|明年|是明年|对，?明年|是指明年)[。！!，,~～]*$")
_NO = re.compile(r"^(?:不用|不需要|算了|不必|不用了|不用提醒|取消|不要)[。！!，,~～]*$")
_SHORT = 20


def past_due_question(day: date) -> str:
    return f"截止日期 {day.month}月{day.day}日 已经过了，是指明年吗？还是改个日期？"


def remaining_missing(note: Note, task: Task | None) -> list[str]:
    """Required fields the note still lacks, minus those already asked about."""
    return _remaining(note, task is not None, task.due_date if task is not None else None)


def _remaining(note: Note, has_task: bool, task_due: date | None) -> list[str]:
    fields: dict[str, Any] = note.fields or {}
    asked = set(fields.get("asked") or [])
    out = []
    for name in fields.get("missing") or []:
        if name in asked or _present(name, note, has_task, task_due):
            continue
        if name == "due" and not has_task:
            continue
        out.append(name)
    return out


def _present(name: str, note: Note, has_task: bool, task_due: date | None) -> bool:
    """Whether the note has contract field ``name`` now (answers and corrections may have filled it)."""
    if name == "account":
        return note.account_id is not None
    if name == "next_action":
        return has_task
    if name == "due":
        return not has_task or task_due is not None
    return bool((note.fields or {}).get(name))


def choose_next(note: Note, *, has_task: bool, task_due: date | None) -> str | None:
    """The field :func:`ask_next` asks about next (marked asked on the note), or None: nothing to ask.

    Usable before the note and its task are stored (``has_task``/``task_due`` say what the
    task will be), so a new note is inserted with its ``asked`` list instead of updated after.
    """
    asked = list((note.fields or {}).get("asked") or [])
    todo = _remaining(note, has_task, task_due)
    if len(asked) >= MAX_QUESTIONS or not todo:
        return None
    update_fields(note, asked=[*asked, todo[0]])
    return todo[0]


async def open_question(
    app: AppContext, session: AsyncSession, note: Note, name: str | None, *, person_id: int, now: datetime
) -> str:
    """Open the question :func:`choose_next` chose (None: close the dialog); returns the question or ""."""
    if name is None:
        await clear_pending(session, person_id)
        return ""
    await set_pending(
        session, person_id, {"kind": MISSING, "note_id": note.id, "field": name},
        now=now, window_minutes=app.config.notes.question_window_minutes,
    )
    return app.services.lexicon.question_for(name)


async def ask_next(
    app: AppContext, session: AsyncSession, note: Note, task: Task | None, *, person_id: int, now: datetime
) -> str:
    """Open the next question for ``note`` (or close the dialog); returns the question or ""."""
    name = choose_next(note, has_task=task is not None, task_due=task.due_date if task is not None else None)
    return await open_question(app, session, note, name, person_id=person_id, now=now)


async def ask_past_due(app: AppContext, session: AsyncSession, note: Note, task: Task, *, person_id: int, now: datetime) -> str:
    """A date already behind us: confirm instead of scheduling a reminder into the past."""
    assert task.due_date is not None
    asked = list((note.fields or {}).get("asked") or [])
    update_fields(note, asked=[*asked, "past_due"])
    await set_pending(
        session, person_id,
        {"kind": PAST_DUE, "note_id": note.id, "task_id": task.id, "due": task.due_date.isoformat()},
        now=now, window_minutes=app.config.notes.question_window_minutes,
    )
    return past_due_question(task.due_date)


def confirm_question(name: str) -> str:
    return f"新客户『{name}』，确认建档吗？"


def needs_confirmation(note: Note) -> bool:
    """A new hospital or unsure voice-memo fields wait for the rep's yes (or fix)."""
    return bool((note.fields or {}).get("account_pending")) or bool(held(note))


def confirm_buttons(note: Note) -> list[Button]:
    """确认 confirms everything the note holds back; 改 asks for the fix (改名 for a new hospital alone)."""
    if held(note):
        return [Button("确认", command=f"确认 {note.id}", primary=True), Button("改", command=f"改 {note.id}")]
    return [Button("确认", command=f"确认建档 {note.id}", primary=True), Button("改名", command=f"改名 {note.id}")]


async def ask_confirm(app: AppContext, session: AsyncSession, note: Note, *, person_id: int, now: datetime) -> str:
    """One question for everything the note holds back: a new hospital and/or unsure voice-memo fields.

    The note is stored; the held values wait for the rep's yes (or fix). One question per memo:
    every unsure field is listed in it, and it is never asked again (an ignored question lapses).
    """
    fields = note.fields or {}
    name = str(fields.get("account_pending") or "")
    asked = list(fields.get("asked") or [])
    lines = held_lines(app, note, local_now(app, now).date())
    update_fields(note, asked=[*asked, *(["account"] if name else []), *(["unsure"] if lines else [])])
    await set_pending(session, person_id, {"kind": CONFIRM_ACCOUNT, "note_id": note.id, "name": name},
                      now=now, window_minutes=app.config.notes.question_window_minutes)
    if not lines:
        return confirm_question(name)
    question = "语音里这几项没听清：" + "；".join(lines) + "。"
    if name and ACCOUNT not in held(note):
        question += f"另有新客户『{name}』待建档。"
    return question + "对吗？"


def acceptable_hospital(app: AppContext, name: str) -> bool:
    rules = note_rules(app)
    return rules.known(name) or rules.shaped(name)


async def file_under(app: AppContext, hc: HandlerContext, note: Note, name: str) -> str:
    """Link ``note`` to the hospital ``name`` (creating the account), then maybe ask the next question."""
    account, _ = await attach_account(hc.session, note, name, actor_id=hc.person.id, rules=note_rules(app), now=hc.now)
    item = held(note).get(ACCOUNT)
    if item is not None:
        settle(note, ACCOUNT, CONFIRMED if item.get("value") == name else FIXED)
    fields = dict(note.fields or {})
    fields.pop("account_pending", None)
    fields.pop("account_rejected", None)
    fields["account"] = name
    note.fields = fields
    task = await task_for_note(hc.session, note.id)
    question = await ask_next(app, hc.session, note, task, person_id=hc.person.id, now=hc.now)
    reply = f"✅ 已归档到 {account.name}。"
    return reply + (f"\n❓ {question}" if question else "")


def _next_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _looks_like_new_note(draft: NoteDraft, field_name: str, note: Note, canonical_same: bool) -> bool:
    """A message with its own stage, concern, action or a different hospital is a new note."""
    if draft.stage and field_name != "stage" and draft.stage != (note.fields or {}).get("stage"):
        return True
    implied = {"competitor"} if draft.competitors and field_name == "competitors" else set()
    if set(draft.concerns) - implied:
        return True
    if draft.action_text and field_name not in ("next_action", "due"):
        return True
    if draft.account and field_name != "account" and note.account_id is not None and not canonical_same:
        return True
    return False


def _reports_more(app: AppContext, text: str, draft: NoteDraft, hc: HandlerContext) -> bool:
    """Whether the message says something besides its next action (a stage or concern of its own)."""
    if not (draft.stage or draft.concerns):
        return False
    rest = text.replace(draft.action_text or "", " ")
    other = to_draft(extract(app, rest, hc.now), rest)
    return bool(other.stage or other.concerns)


def _bare(value: str) -> str:
    return value.strip().strip("，。,.!！?？~～ ")


class Answerer:
    """Applies one answer to one pending field; returns the confirmation line or None."""

    def __init__(self, app: AppContext, hc: HandlerContext, note: Note) -> None:
        self.app = app
        self.hc = hc
        self.session = hc.session
        self.note = note
        self.confirm_name = ""

    async def _audit_note(self, name: str, old: object, new: object) -> None:
        await audit(self.session, actor_id=self.hc.person.id, entity="note", entity_id=self.note.id,
                    field_name=name, old=old, new=new, note_id=self.note.id, now=self.hc.now)

    async def apply(self, field_name: str, draft: NoteDraft, raw: str) -> str | None:
        handler = getattr(self, f"_{field_name}", None)
        if handler is None:
            return None
        return await handler(draft, raw)

    async def _contacts(self, draft: NoteDraft, raw: str) -> str | None:
        if not draft.contacts:
            return None
        fields = self.note.fields or {}
        departments = draft.departments or list(fields.get("departments") or [])
        contact = None
        for i, name in enumerate(draft.contacts):
            c = await resolve_contact(self.session, self.note.account_id, name,
                                      departments[0] if departments and i == 0 else "", now=self.hc.now)
            contact = contact or c
        await self._audit_note("contacts", ",".join(fields.get("contacts") or []), ",".join(draft.contacts))
        if self.note.contact_id is None and contact is not None:
            self.note.contact_id = contact.id
        update_fields(self.note, contacts=draft.contacts, departments=departments)
        settle(self.note, CONTACTS, FIXED)
        who = "、".join(draft.contacts)
        return f"联系人 {who}（{'、'.join(departments)}）" if departments else f"联系人 {who}"

    async def _departments(self, draft: NoteDraft, raw: str) -> str | None:
        values = draft.departments or ([_bare(raw)] if 0 < len(_bare(raw)) <= 10 else [])
        if not values:
            return None
        await self._audit_note("departments", ",".join((self.note.fields or {}).get("departments") or []), ",".join(values))
        update_fields(self.note, departments=values)
        if draft.contacts and not (self.note.fields or {}).get("contacts"):
            await self._contacts(draft, raw)
        return f"科室 {'、'.join(values)}"

    async def _account(self, draft: NoteDraft, raw: str) -> str | None:
        written = draft.account or (_bare(raw) if 0 < len(_bare(raw)) <= _SHORT else "")
        if not written or not acceptable_hospital(self.app, written):
            return None  # "联系人改成王主任" is not a hospital: never file a note under it
        rules = note_rules(self.app)
        if not rules.known(written) and await find_account(self.session, written, rules.canonical) is None:
            update_fields(self.note, account_pending=written)  # a new hospital: the rep confirms first
            settle(self.note, ACCOUNT, FIXED)
            self.confirm_name = written
            if draft.contacts and not (self.note.fields or {}).get("contacts"):
                await self._contacts(draft, raw)
            return f"医院 {written}（新客户）"
        account, opp = await attach_account(
            self.session, self.note, written, actor_id=self.hc.person.id,
            rules=note_rules(self.app), now=self.hc.now,
        )
        update_fields(self.note, account=written, account_pending=None)  # a pending name is answered too
        settle(self.note, ACCOUNT, FIXED)
        if draft.contacts and not (self.note.fields or {}).get("contacts"):
            await self._contacts(draft, raw)
        return f"医院 {account.name}"

    async def _deal_changed(self, opp: Opportunity) -> None:
        """An answer completes the note (already counted): the escalation timer only learns the new facts."""
        deals = note_rules(self.app).deals
        if deals is not None:
            await deals.changed(self.session, opp, self.hc.now, self.hc.person.id)

    async def _amount(self, draft: NoteDraft, raw: str) -> str | None:
        if not draft.amount:
            return None
        await self._audit_note("amount", (self.note.fields or {}).get("amount"), draft.amount)
        update_fields(self.note, amount=draft.amount)
        settle(self.note, AMOUNT, FIXED)
        if self.note.opportunity_id is not None:
            opp = await self.session.get(Opportunity, self.note.opportunity_id)
            if opp is not None:
                await set_amount(self.session, opp, draft.amount, actor_id=self.hc.person.id,
                                 note_id=self.note.id, now=self.hc.now)
                await self._deal_changed(opp)
        return f"金额 {money(draft.amount)}"

    async def _competitors(self, draft: NoteDraft, raw: str) -> str | None:
        values = draft.competitors or ([_bare(raw)] if 0 < len(_bare(raw)) <= 10 else [])
        if not values:
            return None
        await self._audit_note("competitors", ",".join((self.note.fields or {}).get("competitors") or []), ",".join(values))
        update_fields(self.note, competitors=values)
        return f"竞品 {'、'.join(values)}"

    async def _stage(self, draft: NoteDraft, raw: str) -> str | None:
        code = draft.stage or stage_from_text(self.app, raw)
        if not code:
            return None
        await self._audit_note("stage", (self.note.fields or {}).get("stage"), code)
        update_fields(self.note, stage=code)
        if self.note.opportunity_id is not None:
            opp = await self.session.get(Opportunity, self.note.opportunity_id)
            if opp is not None:
                await set_stage(self.session, opp, code, stages=self.app.services.lexicon.stage_order, actor_id=self.hc.person.id,
                                note_id=self.note.id, now=self.hc.now)
                await self._deal_changed(opp)
        return f"阶段 {stage_label(self.app, code)}"

    async def _next_action(self, draft: NoteDraft, raw: str) -> str | None:
        action = draft.action_text
        if not action:
            verbs = self.app.services.lexicon.actions.verbs
            action = _bare(raw) if any(v in raw for v in verbs) else ""
        if not action:
            return None  # "介入科" names something; it does not say what to do
        due, due_at = draft.due, draft.due_at
        if due is None:
            parsed = parse_answer_date(self.app, raw, self.hc.now)
            if parsed is not None:
                due, due_at = parsed.due, parsed.due_at
        today = local_now(self.app, self.hc.now).date()
        task = await create_task(
            self.session, owner_id=self.hc.person.id, note=self.note, opportunity_id=self.note.opportunity_id,
            text=action, due=due, due_at=due_at, remind=due is not None and due >= today,
            policy=policy(self.app), now=self.hc.now,
        )
        line = f"下一步 {action}"
        if task.due_date is not None:
            line += f"，截止 {day_text(task.due_date, task.due_at, app=self.app, today=today)}"
        return line + (_reminder_suffix(self.app, task))

    async def _due(self, draft: NoteDraft, raw: str) -> str | None:
        parsed = parse_answer_date(self.app, raw, self.hc.now)
        if parsed is None:
            return None
        task = await task_for_note(self.session, self.note.id)
        if task is None:
            return None
        await redate_task(self.session, task, parsed.due, parsed.due_at, actor_id=self.hc.person.id,
                          policy=policy(self.app), now=self.hc.now)
        settle(self.note, DUE, FIXED)
        today = local_now(self.app, self.hc.now).date()
        return f"截止 {day_text(task.due_date, task.due_at, app=self.app, today=today)}" + _reminder_suffix(self.app, task)


def _reminder_suffix(app: AppContext, task: Task) -> str:
    if task.remind_at is None:
        return ""
    local = task.remind_at.astimezone(app.config.tz)
    if local.date() == task.due_date:
        return f"，当天 {local:%H:%M} 提醒你"
    return f"，{local.month}月{local.day}日 {local:%H:%M} 提醒你"


def stage_from_text(app: AppContext, raw: str) -> str | None:
    """A stage named by its Chinese label ("商务谈判") or code ("negotiation")."""
    value = _bare(raw).removesuffix("阶段").strip()
    if not value:
        return None
    stages = app.services.lexicon.stages
    for group in stages:
        if value in (group.code, group.label) or group.label in value or group.code == value.lower():
            return group.code
    # the lexicon's own words for a stage: "招标" → 招标采购, "谈判" → 商务谈判, "演示" → 方案演示
    for group in stages:
        if value in group.keywords or (len(value) >= 2 and group.label.startswith(value)):
            return group.code
    for group in stages:
        if len(value) >= 2 and value in group.label:
            return group.code
    return None


CONFIRM_RX = r"^(?:(?:确认建档|确认新客户)\s*(\d{1,18})?|确认\s*(\d{1,18}))\s*[。!！]?$"
RENAME_RX = r"^改名\s*(\d{1,18})?\s*[:：，,]?\s*(.*)$"
FIX_RX = r"^改\s*(\d{1,18})\s*[。!！]?$"
_FIX_ASK = {DUE: "截止改成哪天？直接回日期就行，例如“周四”。", AMOUNT: "金额是多少？直接回金额就行，例如“90万”。"}


async def _close_question(hc: HandlerContext, note: Note) -> None:
    """Clear the open question if it is about ``note`` (an old card's button leaves another note's alone)."""
    state = await load_pending(hc.session, hc.person.id, hc.now)
    if state is not None and int(state.get("note_id") or 0) == note.id:
        await clear_pending(hc.session, hc.person.id)


async def confirm_unsure(app: AppContext, hc: HandlerContext, note: Note) -> list[str]:
    """The rep said yes: every held voice-memo field is stored as if it had been typed.

    The hospital is not handled here (``file_under`` files it, like any new hospital). Each field
    is settled before it is applied, so a repeated tap finds nothing left to do.
    """
    items = held(note)
    answerer = Answerer(app, hc, note)
    lines: list[str] = []
    if DUE in items:
        settle(note, DUE, CONFIRMED)
        day, at = held_due(items[DUE])
        task = await task_for_note(hc.session, note.id)
        if task is not None and task.status == OPEN and task.due_date is None:
            await redate_task(hc.session, task, day, at, actor_id=hc.person.id, policy=policy(app), now=hc.now)
            today = local_now(app, hc.now).date()
            lines.append(f"截止 {day_text(task.due_date, task.due_at, app=app, today=today)}{_reminder_suffix(app, task)}")
    if CONTACTS in items:
        settle(note, CONTACTS, CONFIRMED)
        names = list(items[CONTACTS].get("value") or [])
        current = [c for c in (note.fields or {}).get("contacts") or [] if c not in names]
        first = bool(items[CONTACTS].get("first"))
        line = await answerer.apply(CONTACTS, NoteDraft(text="", contacts=[*names, *current] if first else [*current, *names]), "")
        if first and names:  # the note's main contact, as record_note would have made it
            departments = (note.fields or {}).get("departments") or [""]
            note.contact_id = (await resolve_contact(hc.session, note.account_id, names[0], departments[0], now=hc.now)).id
        lines += [line] if line else []
    if AMOUNT in items:
        settle(note, AMOUNT, CONFIRMED)
        line = await answerer.apply(AMOUNT, NoteDraft(text="", amount=int(items[AMOUNT]["value"])), "")
        lines += [line] if line else []
    return lines


async def confirm_note(app: AppContext, hc: HandlerContext, note: Note) -> Reply:
    """确认: the held fields and a pending hospital become facts; then the note's next question, if any."""
    name = str((note.fields or {}).get("account_pending") or "")
    if not name and not held(note):
        return Reply(text=settled_reply(note) if settled(note) else "没有等待确认的新客户。", tag="note.confirmed")
    await _close_question(hc, note)
    lines = await confirm_unsure(app, hc, note)
    parts = [f"✅ 已确认：{'；'.join(lines)}。"] if lines else []
    if name:
        parts.append(await file_under(app, hc, note, name))
    else:
        task = await task_for_note(hc.session, note.id)
        question = await ask_next(app, hc.session, note, task, person_id=hc.person.id, now=hc.now)
        parts += [f"❓ {question}"] if question else []
    return Reply(text="\n".join(parts) or "✅ 已确认。", tag="note.account_confirmed" if name else "note.confirmed")


async def _rename(app: AppContext, hc: HandlerContext, note: Note, name: str) -> Reply:
    """File ``note`` under the hospital ``name``; without a name, ask for it (the answer is read as the account)."""
    if not name:
        asked = list((note.fields or {}).get("asked") or [])
        update_fields(note, asked=[*asked, "account"])
        await set_pending(hc.session, hc.person.id, {"kind": MISSING, "note_id": note.id, "field": "account"},
                          now=hc.now, window_minutes=app.config.notes.question_window_minutes)
        return Reply(text="请发医院的正确名称，例如“复旦大学附属华山医院”。", tag="note.rename")
    if not acceptable_hospital(app, name):
        return Reply(text=f"“{name}”不像医院名称，请发医院全称，例如“改名 复旦大学附属华山医院”。")
    await clear_pending(hc.session, hc.person.id)
    return Reply(text=await file_under(app, hc, note, name), tag="note.account_confirmed")


async def _own_note(hc: HandlerContext, note_id: str | None) -> Note | None:
    if note_id:
        note = await hc.session.get(Note, int(note_id))
    else:
        state = await load_pending(hc.session, hc.person.id, hc.now)
        note = await hc.session.get(Note, int(state.get("note_id") or 0)) if state else None
    if note is None or note.author_id != hc.person.id or note.deleted_at is not None:
        return None
    return note


def router(app: AppContext) -> Router:
    r = Router("dialog")

    @r.on(matches(CONFIRM_RX))
    async def confirm(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        note = await _own_note(hc, match.group(1) or match.group(2))
        if note is None:
            return Reply(text="没有等待确认的新客户。")
        return await confirm_note(app, hc, note)

    @r.on(matches(RENAME_RX))
    async def rename(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        note = await _own_note(hc, match.group(1))
        if note is None:
            return Reply(text="没有找到要改名的记录。")
        return await _rename(app, hc, note, _bare(match.group(2)))

    @r.on(matches(FIX_RX))
    async def fix(msg: Inbound, hc: HandlerContext, match: re.Match[str]) -> HandlerResult:
        """改 on an unsure card: one held date or amount is asked for; otherwise how to write the fix."""
        note = await _own_note(hc, match.group(1))
        if note is None:
            return Reply(text="没有找到要更正的记录。")
        names = list(held(note))
        if not names or names == [ACCOUNT]:
            if not (note.fields or {}).get("account_pending"):
                return Reply(text=settled_reply(note), tag="note.fix")
            return await _rename(app, hc, note, "")
        if len(names) == 1 and names[0] in _FIX_ASK:
            await set_pending(hc.session, hc.person.id, {"kind": MISSING, "note_id": note.id, "field": names[0]},
                              now=hc.now, window_minutes=app.config.notes.question_window_minutes)
            return Reply(text=_FIX_ASK[names[0]], tag="note.fix")
        return Reply(text=f"请直接发更正，例如{fix_examples(names)}。", tag="note.fix")

    @r.on(text())
    async def pending_answer(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        result = await _pending_answer(msg, hc)
        if result is not SKIP:
            await hc.session.flush()  # the question's row is written lazily; its last write fails here, not later
        return result

    async def _pending_answer(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        state = await load_pending(hc.session, hc.person.id, hc.now)
        if state is None or state.get("kind") not in (MISSING, PAST_DUE, CONFIRM_ACCOUNT):
            return SKIP
        note = await hc.session.get(Note, int(state.get("note_id") or 0))
        if note is None or note.deleted_at is not None:
            await clear_pending(hc.session, hc.person.id)
            return SKIP
        if state.get("kind") == PAST_DUE:
            return await _past_due_answer(app, msg, hc, note, state)
        if state.get("kind") == CONFIRM_ACCOUNT:
            return await _confirm_answer(app, msg, hc, note, state)
        if state.get("kind") != MISSING:
            return SKIP
        if is_chatter(app, msg.text):
            return SKIP  # "好的" does not answer; the question stays open until it expires
        field_name = str(state.get("field") or "")
        draft = to_draft(extract(app, msg.text, hc.now, session=hc.session), msg.text)
        same = False
        if draft.account and note.account_id is not None:
            account = await get_account(hc.session, note.account_id, app.lookups)
            canon = app.services.lexicon.canonical_account(draft.account)
            same = account is not None and (canon == account.name or draft.account in (account.aliases or []))
        # "下周三前把产品资料和报价发给李主任" answers "下一步打算做什么？" even though 报价 reads as a
        # stage; "华山医院今天开了院内论证会，下周三前…" reports a new event: a note of its own
        answers_action = field_name == "next_action" and bool(draft.action_text) and (not draft.account or same) \
            and not _reports_more(app, msg.text, draft, hc)
        if not answers_action and _looks_like_new_note(draft, field_name, note, same):
            await clear_pending(hc.session, hc.person.id)
            return SKIP
        answerer = Answerer(app, hc, note)
        line = await answerer.apply(field_name, draft, msg.text)
        if line is None:
            await clear_pending(hc.session, hc.person.id)
            return SKIP  # not an answer: handle as an ordinary message, never ask twice
        if answerer.confirm_name:
            question = await ask_confirm(app, hc.session, note, person_id=hc.person.id, now=hc.now)
            card = Card(title="已补充", kind="note.answer", blocks=(f"✅ 已补充：{line}。", f"❓ {question}"),
                        buttons=(*confirm_buttons(note), Button("撤销", command=f"撤销 {note.id}")))
            return Reply(card=card, tag="note.answer")
        task = await task_for_note(hc.session, note.id)
        question = await ask_next(app, hc.session, note, task, person_id=hc.person.id, now=hc.now)
        reply = f"✅ 已补充：{line}。"
        if question:
            reply += f"\n❓ {question}"
        return Reply(text=reply, tag="note.answer")

    return r


_CONFIRM_YES = re.compile(r"^(?:确认|是|对|是的|对的|没错|好|好的|建档|确认建档|可以|行)[。！!，,~～]*$")


async def _confirm_answer(
    app: AppContext, msg: Inbound, hc: HandlerContext, note: Note, state: dict[str, Any]
) -> HandlerResult:
    raw = msg.text.strip()
    name = str(state.get("name") or "")
    if _CONFIRM_YES.match(raw) and needs_confirmation(note):
        return await confirm_note(app, hc, note)
    if not name:
        await clear_pending(hc.session, hc.person.id)
        return SKIP  # unsure fields stay held (their buttons still work); the question is not repeated
    draft = to_draft(extract(app, raw, hc.now), raw)
    other = draft.account or re.sub(r"^(?:不对|不是|错了)?[，,。\s]*(?:是|应该是|叫)?", "", raw)
    rest_empty = not (draft.action_text or draft.stage or draft.concerns or draft.contacts)
    if rest_empty and 0 < len(other) <= _SHORT and acceptable_hospital(app, other):
        await clear_pending(hc.session, hc.person.id)
        return Reply(text=await file_under(app, hc, note, other), tag="note.account_confirmed")
    await clear_pending(hc.session, hc.person.id)
    return SKIP  # a new message: the note stays unfiled, the question is not repeated


async def _past_due_answer(
    app: AppContext, msg: Inbound, hc: HandlerContext, note: Note, state: dict[str, Any]
) -> HandlerResult:
    task = await hc.session.get(Task, int(state.get("task_id") or 0))
    if task is None or task.status != "open" or task.due_date is None:
        await clear_pending(hc.session, hc.person.id)
        return SKIP
    raw = msg.text.strip()
    today = local_now(app, hc.now).date()
    new_due: date | None = None
    new_at: datetime | None = None
    if _YES.match(raw):
        new_due = _next_year(task.due_date)
        if task.due_at is not None:
            new_at = task.due_at.astimezone(app.config.tz).replace(year=new_due.year, month=new_due.month, day=new_due.day)
    elif _NO.match(raw):
        await clear_pending(hc.session, hc.person.id)
        return Reply(text="好的，这条不设提醒，可以在 #待办 里看到。", tag="note.answer")
    else:
        parsed = parse_answer_date(app, raw, hc.now)
        if parsed is None or parsed.due < today:
            await clear_pending(hc.session, hc.person.id)
            return SKIP
        new_due, new_at = parsed.due, parsed.due_at
    await redate_task(hc.session, task, new_due, new_at, actor_id=hc.person.id, policy=policy(app), now=hc.now)
    question = await ask_next(app, hc.session, note, task, person_id=hc.person.id, now=hc.now)
    reply = f"✅ 截止改为 {day_text(task.due_date, task.due_at, app=app, today=today)}{_reminder_suffix(app, task)}。"
    if question:
        reply += f"\n❓ {question}"
    return Reply(text=reply, tag="note.answer")
