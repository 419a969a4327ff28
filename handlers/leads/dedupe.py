"""Duplicate detection: is a new lead one we already have open?

A merge hides a lead from routing, so false merges cost more than missed ones: a missed
duplicate means two reps call one doctor (annoying, visible, fixable by a manager); a
false merge silently drops a real opportunity.  Hence:

* a key only matches when *every* field in it is present on both leads (empty never
  equals empty), and a key made of the hospital alone never merges — a big hospital has
  hundreds of unrelated leads;
* a key value shared by more than ``max_hits`` open leads is uninformative (a switchboard
  number, a department's shared phone, "王主任" at a 3,000-bed hospital) and is ignored;
* the lead merges into the *earliest* open match, so repeated duplicates pile onto one
  lead instead of chaining.

Normalisation for comparison: hospital names and departments are NFKC-folded (full-width
→ half-width) with spaces and brackets removed and case folded; phones use the intake
normalised form; contacts are folded the same way but **titles are kept** ("王主任" ≠
"王医生"): stripping them would collapse every 王 in a department into one person, which
is exactly the false merge to avoid.  Hospital aliases (市一院 → 市第一人民医院) are not
resolved here: the service should pass the canonical account name as ``hospital``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.leads.intake import FIELD_LABELS, LeadInput, normalize_phone

_FOLD_DROP = re.compile(r"[\s()（）\[\]【】·・.,，、\-_]")


@dataclass(frozen=True, slots=True)
class OpenLead:
    """An open (unclaimed or in-progress) lead to compare against; ``id`` is the caller's id."""

    id: Hashable
    lead: LeadInput
    created_at: datetime
    assignee: str | None = None


@dataclass(frozen=True, slots=True)
class DuplicateMatch:
    into: OpenLead
    key: tuple[str, ...]
    reason: str


def fold(value: str) -> str:
    """Comparison form of free text: width, case, spaces and brackets folded away."""
    return _FOLD_DROP.sub("", unicodedata.normalize("NFKC", value or "")).casefold()


def key_value(lead: LeadInput, key: Sequence[str]) -> tuple[str, ...] | None:
    """The normalised values of ``key`` on ``lead``, or ``None`` if any field is empty."""
    values = []
    for name in key:
        raw = getattr(lead, name)
        value = (normalize_phone(raw) or fold(raw)) if name == "phone" else fold(raw)
        if not value:
            return None
        values.append(value)
    return tuple(values)


class DuplicateIndex:
    """Open leads indexed by every duplicate key, for many look-ups (simulate, bulk import).

    ``find`` applies the window at look-up time, so one index serves a whole batch.
    """

    def __init__(self, keys: Sequence[Sequence[str]], window_days: int, max_hits: int) -> None:
        self.keys = [tuple(k) for k in keys if set(k) - {"hospital"}]
        self.window = timedelta(days=window_days)
        self.max_hits = max_hits
        self._by_key: dict[tuple[tuple[str, ...], tuple[str, ...]], list[OpenLead]] = defaultdict(list)

    def add(self, open_lead: OpenLead) -> None:
        for key in self.keys:
            value = key_value(open_lead.lead, key)
            if value is not None:
                self._by_key[(key, value)].append(open_lead)

    def find(self, lead: LeadInput, now: datetime) -> DuplicateMatch | None:
        since = now - self.window
        best: tuple[OpenLead, tuple[str, ...]] | None = None
        for key in self.keys:
            value = key_value(lead, key)
            if value is None:
                continue
            hits = [o for o in self._by_key.get((key, value), ()) if o.created_at >= since]
            if not hits or len(hits) > self.max_hits:
                continue
            earliest = min(hits, key=_order)
            if best is None or _order(earliest) < _order(best[0]):
                best = (earliest, key)
        if best is None:
            return None
        into, key = best
        return DuplicateMatch(into, key, _reason(into, key, self.window.days))


def _order(o: OpenLead) -> tuple[datetime, str]:
    return o.created_at, str(o.id)


def _reason(into: OpenLead, key: tuple[str, ...], days: int) -> str:
    fields = "+".join(FIELD_LABELS.get(k, k) for k in key)
    owner = f"，负责人 {into.assignee}" if into.assignee else ""
    return f"{days}天内已有{fields}相同的未结线索 {into.id}（{into.created_at:%Y-%m-%d}{owner}），合并"


def find_duplicate(lead: LeadInput, candidates: Iterable[OpenLead], keys: Sequence[Sequence[str]],
                   window_days: int, max_hits: int, now: datetime) -> DuplicateMatch | None:
    """The earliest open lead ``lead`` duplicates, and why; ``None`` if it is new.

    ``candidates`` are open leads the service loaded for this lead's key values (or simply
    all recent open leads); the max-hits rule counts only candidates within the window, so
    the service must load every open match for a key, not a page of them.
    """
    index = DuplicateIndex(keys, window_days, max_hits)
    for candidate in candidates:
        index.add(candidate)
    return index.find(lead, now)
