"""Voice-memo fields heard with low confidence: shown as unsure, held back, confirmed or fixed.

Why: in a memo "周五" may have been "周四", "四十万" "十万", "刘主任" a repaired "留主任". A guess
stored as fact sets a wrong reminder or writes a wrong amount onto the deal. So a date, hospital,
contact or amount whose words overlap an unsure span of the transcript (word probability below
``[speech] unsure_below``, or rewritten by term/surname correction: see ``nlp.speech.spans``) is
*held*: kept out of the tables, stored only in ``Note.fields["unsure"]``, shown on the card with a
question mark (``截止：11月27日 周五？``) and asked about once, with 确认 / 改 buttons. The rest of
the note is stored at once. Text notes have no spans and are never held.

What "held" means per field:

* due: the task is created at once with its action but without a date, so it never reminds;
  confirming gives it the held date and the reminder exactly as if it had been typed.
  (No task at all would hide the action from #待办 and leave "截止改成周四" nothing to redate.)
* account: the hospital joins the confirmation that already exists for unknown hospitals
  (``account_pending``, the CONFIRM_ACCOUNT question, ``dialog.file_under``): the note is not
  filed and no account is created, even for a hospital the lexicon knows.
* contacts / amount: not written onto contacts or the opportunity, not in ``fields`` either.

``Note.fields["unsure"]`` = {name: {"heard": the words, ...}} with ``due``/``due_at`` (ISO) for
due, ``value`` (a name, names or yuan) for the others, and for contacts ``first`` (the note's main
contact was among them). A confirmed or fixed field moves to ``Note.fields["unsure_settled"]``
({name: "confirmed" | "fixed"}), so an old card's button gets a polite answer and does nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from handlers.common.dates import local_now
from handlers.common.format import day_text, money
from handlers.notes.models import NoteDraft
from nlp.fields import label

if TYPE_CHECKING:
    from bot.context import AppContext
    from storage.models import Note

DUE, ACCOUNT, CONTACTS, AMOUNT = "due", "account", "contacts", "amount"
ORDER = (DUE, ACCOUNT, CONTACTS, AMOUNT)
CONFIRMED, FIXED = "confirmed", "fixed"
Range = tuple[int, int]


class SpanLike(Protocol):
    start: int
    end: int


def spans_from_extra(extra: dict[str, Any]) -> list[Any]:
    """The unsure spans the voice preprocessor stored with the message (``transcript_unsure``),
    as offsets into the stripped transcript the note is built from."""
    rows = extra.get("transcript_unsure")
    raw = str(extra.get("transcript") or "")
    if not rows or not raw:
        return []
    from nlp.speech.spans import (
        unpack,  # only voice memos pay for the speech package import
    )

    lead = len(raw) - len(raw.lstrip())
    text = raw.strip()
    return [s._replace(start=s.start - lead, end=s.end - lead) for s in unpack(rows, raw)
            if s.end - lead > 0 and s.start - lead < len(text)]


def _overlaps(r: Range, spans: Sequence[SpanLike]) -> bool:
    return any(s.start < r[1] and r[0] < s.end for s in spans)


def _occurrences(text: str, value: str) -> list[Range]:
    out: list[Range] = []
    if not value:
        return out
    i = text.find(value)
    while i >= 0:
        out.append((i, i + len(value)))
        i = text.find(value, i + len(value))
    return out


def _shaky(ranges: Iterable[Range], spans: Sequence[SpanLike]) -> Range | None:
    """The first source range when every place the value was said is unsure, else None.

    A value said twice and heard clearly once is taken as heard; a value whose words cannot be
    found in the transcript (the extractor normalised them) cannot be judged and is taken as heard.
    """
    found = list(ranges)
    if not found or not all(_overlaps(r, spans) for r in found):
        return None
    return found[0]


def _date_ranges(app: AppContext, text: str, now: datetime, due: date) -> list[Range]:
    """Where the due date was said: the date expressions resolving to ``due`` (all of them if none does)."""
    from nlp.dates import find_dates

    mentions = find_dates(text, local_now(app, now), app.services.lexicon.holidays)
    same = [d.span for d in mentions if d.due == due]
    return same or [d.span for d in mentions]


def _amount_range(text: str, amount: int) -> list[Range]:
    from nlp.amounts import find_amount
    from nlp.numerals import FULLWIDTH

    found = find_amount(text.translate(FULLWIDTH))  # same length: offsets stay valid
    return [found[1]] if found is not None and found[0] == amount else []


def hold_unsure(app: AppContext, draft: NoteDraft, spans: Sequence[SpanLike], now: datetime) -> NoteDraft:
    """``draft`` with its unsure fields moved out of the draft (and its extractor dump) into ``unsure``."""
    if not spans:
        return draft
    text = draft.text
    held: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    extracted = copy.deepcopy(draft.extracted)
    today = local_now(app, now).date()

    if draft.action_text and draft.due is not None and not draft.past and draft.due >= today:
        r = _shaky(_date_ranges(app, text, now, draft.due), spans)
        if r is not None:  # a past date is asked about anyway (the past-due question): not held
            held[DUE] = {"heard": text[r[0]:r[1]], "due": draft.due.isoformat(),
                         "due_at": draft.due_at.isoformat() if draft.due_at else None}
            changes.update(due=None, due_at=None)
            action = extracted.get("next_action")
            if isinstance(action, dict):
                action.update(due=None, due_at=None)
    if draft.account:
        r = _shaky(_occurrences(text, draft.account), spans)
        if r is not None:
            held[ACCOUNT] = {"heard": text[r[0]:r[1]], "value": draft.account}
    shaky = [(name, r) for name in draft.contacts if (r := _shaky(_occurrences(text, name), spans)) is not None]
    if shaky:
        names = [name for name, _ in shaky]
        held[CONTACTS] = {"heard": "、".join(text[r[0]:r[1]] for _, r in shaky), "value": names,
                          "first": draft.contacts[0] in names}
        rest = [c for c in draft.contacts if c not in names]
        changes["contacts"] = rest
        extracted["contacts"] = rest
    if draft.amount:
        r = _shaky(_amount_range(text, int(draft.amount)), spans)
        if r is not None:
            held[AMOUNT] = {"heard": text[r[0]:r[1]], "value": int(draft.amount)}
            changes["amount"] = None
            extracted["amount"] = None
    if not held:
        return draft
    return replace(draft, **changes, extracted=extracted, unsure=held)


def held(note: Note) -> dict[str, dict[str, Any]]:
    """The note's fields still waiting for the rep, in card order."""
    items = (note.fields or {}).get("unsure") or {}
    return {name: dict(items[name]) for name in ORDER if name in items}


def settled(note: Note) -> dict[str, str]:
    return dict((note.fields or {}).get("unsure_settled") or {})


def settle(note: Note, name: str, how: str) -> bool:
    """``name`` is no longer unsure (the rep confirmed or fixed it); False if it was not held."""
    fields = dict(note.fields or {})
    items = dict(fields.get("unsure") or {})
    if name not in items:
        return False
    items.pop(name)
    if items:
        fields["unsure"] = items
    else:
        fields.pop("unsure", None)
    fields["unsure_settled"] = {**(fields.get("unsure_settled") or {}), name: how}
    note.fields = fields
    return True


def held_due(item: dict[str, Any]) -> tuple[date, datetime | None]:
    due_at = item.get("due_at")
    return date.fromisoformat(str(item["due"])), datetime.fromisoformat(due_at) if due_at else None


def shown(app: AppContext, name: str, item: dict[str, Any], today: date | None) -> str:
    """The held value as the card shows it, with its question mark ("11月27日 周五？")."""
    if name == DUE:
        day, at = held_due(item)
        return day_text(day, at, app=app, today=today) + "？"
    if name == AMOUNT:
        return money(int(item["value"])) + "？"
    if name == CONTACTS:
        return "、".join(f"{c}？" for c in item.get("value") or [])
    return f"{item.get('value')}？"


def held_lines(app: AppContext, note: Note, today: date | None) -> list[str]:
    """"截止 11月27日 周五？" for each held field: what the question lists."""
    return [f"{label(name)} {shown(app, name, item, today)}" for name, item in held(note).items()]


def fix_examples(names: Iterable[str]) -> str:
    """How to fix each held field in one message; the corrections handler parses these."""
    examples = {DUE: "截止改成周四", ACCOUNT: "医院改成仁济医院", CONTACTS: "联系人改成王主任", AMOUNT: "金额改成90万"}
    return "、".join(f"“{examples[n]}”" for n in names if n in examples)


def settled_reply(note: Note) -> str:
    """What an old card's 确认/改 button answers when nothing on the note waits any more."""
    done = settled(note)
    if not done:
        return "这条记录没有等待确认的内容。"
    fixed = [label(n) for n in ORDER if done.get(n) == FIXED]
    if fixed:
        return f"这条记录已经更正过（{'、'.join(fixed)}），没有等待确认的内容了。"
    return "这条记录已经确认过了，无需再点。"
