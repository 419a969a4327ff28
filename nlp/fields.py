"""The note field contract: one list of the fields a follow-up note has, shared by every layer.

Extraction output (``genjin extract`` JSON), the stored ``Note.fields``, the required
fields sales ops list per stage in ``required.toml`` (and the question asked for each),
and the "已记录" card all use these names and labels, so a field is added or renamed here
once. ``due`` is a field of its own for requirements and questions ("there is a next
action but no date"), although the extractor nests it inside ``next_action``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["code", "codes", "text", "texts", "amount", "action", "date"]


@dataclass(frozen=True)
class NoteField:
    name: str  # the key in the extract contract and in Note.fields
    label: str  # how cards and answers name it
    kind: Kind  # code(s): lexicon codes; text(s): names as written; amount: yuan; action/date: the next step
    requirable: bool  # may be listed in required.toml (the bot then asks for it when missing)


NOTE_FIELDS: tuple[NoteField, ...] = (
    NoteField("stage", "阶段", "code", True),
    NoteField("concerns", "关注点", "codes", False),
    NoteField("cues", "信号", "codes", False),
    NoteField("next_action", "下一步", "action", True),
    NoteField("due", "截止", "date", True),
    NoteField("contacts", "联系人", "texts", True),
    NoteField("departments", "科室", "texts", True),
    NoteField("account", "医院", "text", True),
    NoteField("amount", "金额", "amount", True),
    NoteField("competitors", "竞品", "texts", True),
    NoteField("products", "产品", "texts", False),
)

FIELDS: dict[str, NoteField] = {f.name: f for f in NOTE_FIELDS}
REQUIRABLE: tuple[str, ...] = tuple(f.name for f in NOTE_FIELDS if f.requirable)
LIST_FIELDS: tuple[str, ...] = tuple(f.name for f in NOTE_FIELDS if f.kind in ("codes", "texts"))
"""Fields that hold several values (extraction gives lists; the card joins them)."""


def label(name: str) -> str:
    return FIELDS[name].label
