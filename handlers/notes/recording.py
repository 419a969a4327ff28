"""Recording a note from a draft and answering with its card (and at most one question)."""

from __future__ import annotations

from bot.context import AppContext
from bot.messages import Reply
from bot.router import HandlerContext
from cards.model import Button
from handlers.common.dates import local_now
from handlers.notes.cards import note_card
from handlers.notes.dialog import ask_confirm_account, ask_next, ask_past_due, confirm_buttons
from handlers.notes.models import NoteDraft
from handlers.notes.service import note_rules, record_note


async def record_and_card(app: AppContext, hc: HandlerContext, draft: NoteDraft, *, title: str = "已记录") -> Reply:
    recorded = await record_note(
        hc.session,
        hc.person,
        draft,
        inbox_id=hc.inbox_id,
        rules=note_rules(app),
        now=hc.now,
    )
    buttons: list[Button] = []
    if recorded.account_pending:
        question = await ask_confirm_account(app, hc.session, recorded.note, recorded.account_pending,
                                             person_id=hc.person.id, now=hc.now)
        buttons = confirm_buttons(recorded.note.id)
    elif recorded.past_due is not None and recorded.task is not None:
        question = await ask_past_due(app, hc.session, recorded.note, recorded.task, person_id=hc.person.id, now=hc.now)
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
