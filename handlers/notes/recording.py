"""Recording a note from a draft and answering with its card (and at most one question)."""

from __future__ import annotations

from bot.context import AppContext
from bot.messages import Reply
from bot.router import HandlerContext
from cards.model import Button
from handlers.common.dates import local_now
from handlers.notes.cards import note_card
from handlers.notes.dialog import (
    ask_confirm,
    ask_next,
    ask_past_due,
    choose_next,
    confirm_buttons,
    needs_confirmation,
    open_question,
)
from handlers.notes.models import NoteDraft, Recorded
from handlers.notes.service import (
    PlannedTask,
    attach_account,
    note_rules,
    recent_notes,
    record_note,
    update_fields,
)
from handlers.notes.unsure import ACCOUNT, held
from storage.models import Note


async def record_and_card(app: AppContext, hc: HandlerContext, draft: NoteDraft, *, title: str = "已记录") -> Reply:
    # The usual next question (a missing field) is chosen before the note is inserted, so the
    # note is stored with its "asked" list rather than updated right after. Confirmations and
    # past dates are decided after, as before (a repeated new hospital may file the note first).
    planned: list[str | None] = []

    def plan(note: Note, task: PlannedTask) -> None:
        if not needs_confirmation(note) and not (task.exists and task.past):
            planned.append(choose_next(note, has_task=task.exists, task_due=task.due))

    recorded = await record_note(
        hc.session,
        hc.person,
        draft,
        inbox_id=hc.inbox_id,
        rules=note_rules(app),
        now=hc.now,
        before_insert=plan,
    )
    if recorded.account_pending and ACCOUNT not in held(recorded.note):
        await _named_again(app, hc, recorded)  # (an unsure hearing of a name is no second naming)
    buttons: list[Button] = []
    if needs_confirmation(recorded.note):  # a new hospital and/or unsure voice-memo fields: one question
        question = await ask_confirm(app, hc.session, recorded.note, person_id=hc.person.id, now=hc.now)
        buttons = confirm_buttons(recorded.note)
    elif recorded.past_due is not None and recorded.task is not None:
        question = await ask_past_due(app, hc.session, recorded.note, recorded.task, person_id=hc.person.id, now=hc.now)
    elif planned:
        question = await open_question(app, hc.session, recorded.note, planned[0], person_id=hc.person.id, now=hc.now)
    else:
        question = await ask_next(app, hc.session, recorded.note, recorded.task, person_id=hc.person.id, now=hc.now)
    card = note_card(
        app,
        recorded.note,
        account=recorded.account,
        opportunity=recorded.opportunity,
        task=recorded.task,
        question=question,
        stage_kept=recorded.stage_kept,
        today=local_now(app, hc.now).date(),
        role=hc.person.role,
        title=title,
        extra_buttons=buttons,
    )
    app.log.info("notes.recorded", note_id=recorded.note.id, person=hc.person.key, source=draft.source,
                 stage=draft.stage, question=bool(question))
    return Reply(card=card, tag="note")


REPEAT_LOOKBACK = 20


async def _named_again(app: AppContext, hc: HandlerContext, recorded: Recorded) -> None:
    """A new hospital the rep names a second time (the first question went unanswered) is meant:
    file this note and the earlier ones under it instead of asking again."""
    name = recorded.account_pending or ""
    earlier = [
        n for n in await recent_notes(hc.session, hc.person.id, limit=REPEAT_LOOKBACK)
        if n.id != recorded.note.id and n.account_id is None and (n.fields or {}).get("account_pending") == name
    ]
    if not earlier:
        return
    rules = note_rules(app)
    for note in [*earlier, recorded.note]:
        account, opp = await attach_account(hc.session, note, name, actor_id=hc.person.id, rules=rules, now=hc.now)
        update_fields(note, account_pending=None, account=name)
    recorded.account, recorded.opportunity, recorded.account_pending = account, opp, None
