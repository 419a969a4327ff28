"""The compact "已记录" card a rep gets back for a note.

Why compact: reps read it on a phone between two hospital corridors. Only fields that
have a value are shown; the one open question (if any) is the last line, so the rep
sees at a glance what was understood and what is still needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from cards.model import Button, Card, CardField
from handlers.common.format import concern_labels, day_text, money, stage_label
from handlers.notes.unsure import ACCOUNT, AMOUNT, CONTACTS, DUE, held, shown
from nlp.fields import label

if TYPE_CHECKING:
    from bot.context import AppContext
    from storage.models import Account, Note, Opportunity, Task

def note_card(
    app: AppContext,
    note: Note,
    *,
    account: Account | None,
    opportunity: Opportunity | None,
    task: Task | None,
    question: str = "",
    stage_kept: str | None = None,
    title: str = "已记录",
    today: date | None = None,
    role: str | None = None,
    extra_buttons: Sequence[Button] = (),
) -> Card:
    fields: dict[str, Any] = note.fields or {}
    unsure = held(note)  # voice-memo values waiting for the rep: shown with a question mark
    rows: list[CardField] = []
    stage = fields.get("stage")
    if stage:
        text = stage_label(app, stage)
        if stage_kept:
            text += f"（商机仍为 {stage_label(app, stage_kept)}，如需回退请说“阶段改成…”）"
        rows.append(CardField(label("stage"), text))
    elif opportunity is not None and opportunity.stage:
        rows.append(CardField(label("stage"), f"{stage_label(app, opportunity.stage)}（未变）"))
    concerns = fields.get("concerns") or []
    if concerns:
        rows.append(CardField(label("concerns"), "、".join(concern_labels(app, concerns))))
    if task is not None:
        rows.append(CardField(label("next_action"), task.text))
        if task.due_date is not None:
            rows.append(CardField(label("due"), day_text(task.due_date, task.due_at, app=app, today=today)))
        elif DUE in unsure:
            rows.append(CardField(label("due"), shown(app, DUE, unsure[DUE], today)))
    contacts = fields.get("contacts") or []
    departments = fields.get("departments") or []
    if contacts or CONTACTS in unsure:
        who = "、".join([*contacts, *([shown(app, CONTACTS, unsure[CONTACTS], today)] if CONTACTS in unsure else [])])
        rows.append(CardField(label("contacts"), f"{who}（{'、'.join(departments)}）" if departments else who))
    elif departments:
        rows.append(CardField(label("departments"), "、".join(departments)))
    if account is not None:
        rows.append(CardField(label("account"), account.name))
    elif ACCOUNT in unsure:
        rows.append(CardField(label("account"), shown(app, ACCOUNT, unsure[ACCOUNT], today)))
    elif fields.get("account_pending"):
        rows.append(CardField(label("account"), f"{fields['account_pending']}（新客户，待确认）"))
    amount = fields.get("amount")
    if amount:
        rows.append(CardField(label("amount"), money(int(amount))))
    elif AMOUNT in unsure:
        rows.append(CardField(label("amount"), shown(app, AMOUNT, unsure[AMOUNT], today)))
    competitors = fields.get("competitors") or []
    if competitors:
        brand = app.services.lexicon.canonical_brand  # "Medtronic" is shown as 美敦力; the note keeps what was written
        rows.append(CardField(label("competitors"), "、".join(dict.fromkeys(brand(c) for c in competitors))))
    products = fields.get("products") or []
    if products:
        rows.append(CardField(label("products"), "、".join(products)))

    blocks: list[str] = []
    if question:
        blocks.append(f"❓ {question}")

    buttons = list(extra_buttons)
    buttons += _talk_track_buttons(app, list(concerns), role) if concerns else []
    buttons.append(Button("撤销", command=f"撤销 {note.id}"))

    subtitle = f"🎤 {note.transcript}" if note.source == "voice" and note.transcript else ""
    return Card(
        title=title,
        kind="note",
        subtitle=subtitle,
        fields=tuple(rows),
        blocks=tuple(blocks),
        buttons=tuple(buttons),
        meta={"note_id": str(note.id)},
    )


def _talk_track_buttons(app: AppContext, concerns: list[str], role: str | None) -> list[Button]:
    """One-tap talk tracks for the note's concerns; a playbook problem never loses the card."""
    try:
        playbook = app.services.playbook
        if playbook is None:
            return []
        from cards.playbook import talk_track_buttons

        current = getattr(playbook, "current", playbook)  # a PlaybookService or a Playbook
        return list(talk_track_buttons(current, concerns, role=role))
    except Exception:  # noqa: BLE001 - broken playbook content must not fail the note
        app.log.warning("notes.talk_track_buttons_failed", exc_info=True)
        return []
