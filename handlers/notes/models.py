"""What a note is before and after it is stored, independent of the extractor's classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from storage.models import Account, Contact, Note, Opportunity, Task


@dataclass
class NoteDraft:
    """What one rep message says, independent of the extractor's classes.

    ``action_text``/``due``/``due_at``/``past`` describe the next action (if any);
    ``missing`` lists the required fields the extractor found absent; ``extracted`` is the
    extractor's own dump, stored verbatim in ``Note.fields`` for later analysis.
    ``unsure`` holds the voice-memo fields heard with low confidence (:mod:`handlers.notes.unsure`):
    they are kept out of the draft's own fields and stored only as ``Note.fields["unsure"]``
    until the rep confirms or fixes them.
    """

    text: str
    source: str = "text"
    transcript: str = ""
    stage: str | None = None
    concerns: list[str] = field(default_factory=list)
    cues: list[str] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    account: str | None = None
    departments: list[str] = field(default_factory=list)
    amount: int | None = None
    competitors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    action_text: str | None = None
    due: date | None = None
    due_at: datetime | None = None
    past: bool = False
    missing: list[str] = field(default_factory=list)
    extracted: dict[str, Any] = field(default_factory=dict)
    unsure: dict[str, Any] = field(default_factory=dict)

@dataclass
class Recorded:
    """The outcome of storing a note: the rows touched and what still needs the rep."""

    note: Note
    account: Account | None
    contact: Contact | None
    opportunity: Opportunity | None
    task: Task | None
    stage_changed: bool = False
    stage_kept: str | None = None  # the opportunity's later stage when the note's signal was older
    past_due: date | None = None
    account_pending: str | None = None  # an unknown hospital waiting for the rep's confirmation
