"""The playbook as data: talk-track entries, commands and looking them up by #tag.

Lookup lives with the data because every caller (the chat router, the note card, the
CLI) needs the same forgiving matching: full-width ``＃``, case, aliases, a tag typed
without a space before the text, and suggestions for a tag that does not exist.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from cards.model import Card
from cards.playbook import render

PLAYBOOK_HANDLER = "playbook"


def normalize_tag(tag: str) -> str:
    """Comparable form: full-width → ASCII (＃ → #, Ｐ → P), no leading #, case-folded."""
    return unicodedata.normalize("NFKC", tag or "").strip().lstrip("#").strip().casefold()


@dataclass(frozen=True, slots=True)
class Link:
    """A document or page a talk track points to; the first one becomes the card's link."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One talk track (``[[entry]]``); ``roles`` empty means everyone may see it."""

    tag: str
    title: str
    when: str
    steps: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    roles: tuple[str, ...] = ()
    concerns: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    source: str = ""

    def allowed(self, role: str) -> bool:
        return not self.roles or role in self.roles

    @property
    def names(self) -> tuple[str, ...]:
        return (self.tag, *self.aliases)


@dataclass(frozen=True, slots=True)
class Command:
    """A command listed by #帮助 (``[[command]]``), answered here or by another feature."""

    tag: str
    description: str
    usage: str = ""
    aliases: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    handler: str = ""
    source: str = ""

    def allowed(self, role: str) -> bool:
        return not self.roles or role in self.roles

    @property
    def names(self) -> tuple[str, ...]:
        return (self.tag, *self.aliases)

    @property
    def ours(self) -> bool:
        """True when the playbook router answers this command itself (``#帮助``)."""
        return self.handler == PLAYBOOK_HANDLER


@dataclass(frozen=True)
class Playbook:
    """All entries and commands with name indexes built once, so lookups per message are cheap."""

    entries: tuple[Entry, ...]
    commands: tuple[Command, ...] = ()
    source: str = ""
    _entries_by_name: dict[str, Entry] = field(default_factory=dict, repr=False)
    _commands_by_name: dict[str, Command] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            for name in entry.names:
                self._entries_by_name.setdefault(normalize_tag(name), entry)
        for command in self.commands:
            for name in command.names:
                self._commands_by_name.setdefault(normalize_tag(name), command)

    # ---- lookup ----------------------------------------------------------------

    def find(self, tag: str) -> Entry | None:
        """The entry for ``tag`` or one of its aliases (``#价格``, ``＃PRICE``, ``报价``)."""
        return self._entries_by_name.get(normalize_tag(tag))

    def command(self, tag: str) -> Command | None:
        return self._commands_by_name.get(normalize_tag(tag))

    def for_concern(self, code: str) -> Entry | None:
        for entry in self.entries:
            if code in entry.concerns:
                return entry
        return None

    def split_known_prefix(self, tag: str) -> tuple[str, str] | None:
        """For "#价格客户嫌贵" (no space after the tag): ("价格", "客户嫌贵").

        Returns the longest known tag/alias/command that ``tag`` starts with, and what
        follows it, or None when no known name is a prefix.
        """
        norm = normalize_tag(tag)
        raw = unicodedata.normalize("NFKC", tag).lstrip("#")
        best = ""
        for name in (*self._entries_by_name, *self._commands_by_name):
            if len(name) > len(best) and norm.startswith(name):
                best = name
        if not best:
            return None
        return raw[: len(best)], raw[len(best) :]

    def suggest(self, tag: str, n: int = 3, *, role: str | None = None) -> list[str]:
        """Closest tags to an unknown ``tag`` as "#价格" strings, best first.

        Scores every tag and alias (an alias counts for its entry) with difflib's ratio
        and with character overlap, which matters for two-character Chinese tags
        ("价钱" shares "价" with "价格" and "降价").
        """
        query = normalize_tag(tag)
        if not query:
            return []
        scores: dict[str, float] = {}
        order: dict[str, int] = {}
        items: list[tuple[str, Sequence[str]]] = [
            (e.tag, e.names) for e in self.entries if role is None or e.allowed(role)
        ] + [(c.tag, c.names) for c in self.commands if role is None or c.allowed(role)]
        for index, (canonical, names) in enumerate(items):
            for name in names:
                candidate = normalize_tag(name)
                if not candidate:
                    continue
                ratio = difflib.SequenceMatcher(None, query, candidate).ratio()
                shared = len(set(query) & set(candidate))
                overlap = shared / max(len(set(query)), len(set(candidate)))
                score = max(ratio, overlap)
                if score > scores.get(canonical, 0.0):
                    scores[canonical] = score
                order.setdefault(canonical, index)
        ranked = sorted((c for c, s in scores.items() if s >= 0.34), key=lambda c: (-scores[c], order[c]))
        return [f"#{c}" for c in ranked[:n]]

    # ---- cards (built in cards.playbook.render; methods kept so callers hold one object) ----

    def card(self, entry: Entry) -> Card:
        """The talk-track card a rep sees."""
        return render.entry_card(self, entry)

    def help_card(self, role: str) -> Card:
        """What ``role`` can type: commands first, then the talk tracks."""
        return render.help_card(self, role)

    def not_found_card(self, tag: str, role: str) -> Card:
        """The answer to an unknown #tag, with the closest tags as buttons."""
        return render.not_found_card(self, tag, role)
