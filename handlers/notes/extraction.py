"""The bridge from the extraction engine to the storage layer.

Why a bridge: the notes service must not depend on the extractor's classes (they evolve
with the NLP work), and every handler that reads a rep's words (new notes, answers,
corrections) needs the same conversion.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.common.dates import local_now
from handlers.common.memo import memo
from handlers.notes.models import NoteDraft
from nlp.fields import NOTE_FIELDS

if TYPE_CHECKING:
    from bot.context import AppContext

_EXTRACTED = "notes.extracted"  # memo: (text, now) → the extractor's result
_DANGLING = re.compile(r"(?i)[\s,，]+(?:by|before|on|until|till|due|no later than)\s*[.,，。]?$")
_PUNCT = re.compile(r"[\s，。,.!！?？~～、…:：;；\"'“”‘’()（）\[\]【】]+")


def _jsonable(value: Any) -> Any:
    """Note.fields is a JSON column: dates become ISO strings, anything odd becomes text.

    The extractor's dict is plain JSON already (strings, ints, floats, lists, string keys), so
    it is copied as is; only something else (a date, a tuple, a number subclass, an odd key)
    takes the encode-decode round trip, whose result the copy equals whenever it is taken.
    """
    plain = _plain_copy(value)
    if plain is not _NOT_PLAIN:
        return plain
    return json.loads(json.dumps(value, ensure_ascii=False, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


_NOT_PLAIN = object()
_SCALARS = (str, int, float, bool, type(None))


def _plain_copy(value: Any) -> Any:
    """A copy of ``value`` if it holds only exact JSON types (what a JSON round trip returns unchanged), else _NOT_PLAIN."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        out = []
        for item in value:
            item = _plain_copy(item)
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
            out.append(item)
        return out
    if kind is dict:
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            item = _plain_copy(item)
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
            copied[key] = item
        return copied
    return _NOT_PLAIN


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def extract(app: AppContext, text: str, now: datetime, *, session: AsyncSession | None = None) -> Any:
    """Run the per-process extractor on ``text`` as of ``now`` (aware).

    With ``session``, once per transaction: a message that may answer an open question is
    read by the dialog and then, as a new note, by the notes handler (same text, same
    ``now``, same result; callers only read it).
    """
    if session is None:
        return app.services.extractor.extract(text, local_now(app, now))
    done = memo(session).setdefault(_EXTRACTED, {})
    key = (text, now)
    if key not in done:
        done[key] = app.services.extractor.extract(text, local_now(app, now))
    return done[key]


def to_draft(note: Any, text: str, *, source: str = "text", transcript: str = "") -> NoteDraft:
    """Convert an ``nlp.extract.Note`` into a draft, field by field as the contract (:mod:`nlp.fields`) lists them."""
    values: dict[str, Any] = {}
    for f in NOTE_FIELDS:
        value = getattr(note, f.name, None)
        if f.kind in ("codes", "texts"):
            values[f.name] = list(value or [])
        elif f.kind in ("code", "text"):
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            values[f.name] = value or None
        elif f.kind == "amount":
            values[f.name] = value
    action = getattr(note, "next_action", None)
    action_text = (getattr(action, "text", "") or text).strip() if action is not None else None
    if action_text:
        # the date was cut out of "... by Friday": do not leave its preposition dangling
        action_text = _DANGLING.sub("", action_text).strip() or action_text
    return NoteDraft(
        text=text,
        source=source,
        transcript=transcript,
        **values,
        action_text=action_text,
        due=_as_date(getattr(action, "due", None)) if action is not None else None,
        due_at=_as_datetime(getattr(action, "due_at", None)) if action is not None else None,
        past=bool(getattr(action, "past", False)) if action is not None else False,
        missing=list(getattr(note, "missing", []) or []),
        extracted=_jsonable(note.to_dict()) if hasattr(note, "to_dict") else {},
    )


def is_chatter(app: AppContext, text: str) -> bool:
    """Acknowledgements, thanks and emoji: nothing to store and nothing worth answering."""
    words = app.services.lexicon.language.chatter
    parts = [p for p in _PUNCT.split(text.strip()) if p]
    if not parts:
        return True
    for part in parts:
        core = "".join(ch for ch in part if ch.isalnum())
        if not core:
            continue  # emoji / symbols only
        if part in words or core in words:
            continue
        if any(part.startswith(w) and all(not c.isalnum() for c in part[len(w):]) for w in words):
            continue  # "辛苦了👍"
        return False
    return True
