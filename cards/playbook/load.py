"""Loading the playbook: TOML files → a validated :class:`~cards.playbook.model.Playbook`.

Sales ops own the content and edit it without code, so loading is strict and collects
every problem with the file, the entry and what is wrong (:class:`PlaybookError`), and
it checks every card renders within the chat platforms' limits. Vocabularies are not
repeated here: roles come from :data:`storage.org.ROLES` and concern codes from the
lexicon, so a talk track cannot drift from what people and the extractor use.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cards.playbook.limits import (
    MAX_CASES,
    MAX_ITEM,
    MAX_LINKS,
    MAX_PHRASES,
    MAX_RELATED,
    MAX_STEPS,
    MAX_TAG,
    MAX_TITLE,
    MAX_WECOM_PARTS,
    MAX_WHEN,
)
from cards.playbook.model import Command, Entry, Link, Playbook, normalize_tag
from cards.render_dingtalk import TRUNCATED, dingtalk_message
from cards.render_wecom import split_markdown, wecom_markdown
from cards.textutil import clip
from nlp.lexicon import concern_codes
from storage.org import ROLES

PACKAGED_DIR = Path(__file__).with_name("tracks")  # the packaged talk tracks

ENTRY_KEYS = {"tag", "aliases", "title", "when", "steps", "phrases", "cases", "links", "roles", "concerns", "related"}
COMMAND_KEYS = {"tag", "aliases", "usage", "description", "roles", "handler"}
FILE_KEYS = {"entry", "command"}
_TAG_OK = re.compile(r"^[^\s#＃，。,.!！?？]+$")
_URL_OK = re.compile(r"^https?://\S+$")


class PlaybookError(Exception):
    """The playbook cannot be used; ``problems`` lists each one (file, entry, what)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Problems:
    """Collects every problem so one run reports them all, not just the first."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")


def _strings(value: Any, where: str, key: str, problems: _Problems, *, max_items: int, max_len: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(where, f"{key} must be a list of strings")
        return ()
    items = tuple(v.strip() for v in value if v.strip())
    if len(items) > max_items:
        problems.add(where, f"{key} has {len(items)} items; at most {max_items} fit on a card")
    for item in items:
        if len(item) > max_len:
            problems.add(where, f"{key} item is {len(item)} characters (at most {max_len}): {clip(item, 20)!r}")
    return items


def _string(value: Any, where: str, key: str, problems: _Problems, *, required: bool, max_len: int) -> str:
    if value is None:
        if required:
            problems.add(where, f"missing required key {key!r}")
        return ""
    if not isinstance(value, str):
        problems.add(where, f"{key} must be a string")
        return ""
    value = value.strip()
    if required and not value:
        problems.add(where, f"{key} must not be empty")
    if len(value) > max_len:
        problems.add(where, f"{key} is {len(value)} characters (at most {max_len}): {clip(value, 20)!r}")
    return value


def _tag(value: Any, where: str, key: str, problems: _Problems) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.add(where, f"missing required key {key!r}" if value is None else f"{key} must be a non-empty string")
        return ""
    tag = unicodedata.normalize("NFKC", value).strip().lstrip("#").strip()
    if not _TAG_OK.match(tag):
        problems.add(where, f"{key} {value!r} cannot be typed as a #tag (no spaces or punctuation such as ，。!?)")
    if len(tag) > MAX_TAG:
        problems.add(where, f"{key} {value!r} is longer than {MAX_TAG} characters")
    return tag


def _tags(value: Any, where: str, key: str, problems: _Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(where, f"{key} must be a list of tags")
        return ()
    return tuple(t for t in (_tag(v, where, key, problems) for v in value) if t)


def _codes(value: Any, where: str, key: str, allowed: Sequence[str], problems: _Problems) -> tuple[str, ...]:
    codes = _strings(value, where, key, problems, max_items=len(allowed), max_len=20)
    for code in codes:
        if code not in allowed:
            problems.add(where, f"unknown {key[:-1]} {code!r} (allowed: {', '.join(allowed)})")
    return tuple(c for c in codes if c in allowed)


def _links(value: Any, where: str, problems: _Problems) -> tuple[Link, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(where, "links must be a list of {label = …, url = …} tables")
        return ()
    links: list[Link] = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"label", "url"}:
            problems.add(where, "each link must be {label = \"…\", url = \"https://…\"} (no other keys)")
            continue
        label, url = item.get("label"), item.get("url")
        if not isinstance(label, str) or not label.strip():
            problems.add(where, "link label is missing")
            continue
        if not isinstance(url, str) or not _URL_OK.match(url.strip()):
            problems.add(where, f"link {label!r}: url must start with http:// or https:// (got {url!r})")
            continue
        links.append(Link(label.strip(), url.strip()))
    if len(links) > MAX_LINKS:
        problems.add(where, f"links has {len(links)} items; at most {MAX_LINKS}")
    return tuple(links)


def _unknown_keys(raw: dict[str, Any], allowed: set[str], where: str, problems: _Problems) -> None:
    for key in sorted(set(raw) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(sorted(allowed))})"
        problems.add(where, f"unknown key {key!r}{hint}")


def _parse_entry(raw: Any, file: str, index: int, problems: _Problems, concerns: Sequence[str]) -> Entry | None:
    where = f"{file}: entry {index}"
    if not isinstance(raw, dict):
        problems.add(where, "must be a table ([[entry]])")
        return None
    tag = _tag(raw.get("tag"), where, "tag", problems)
    if tag:
        where = f"{file}: entry {index} (#{tag})"
    _unknown_keys(raw, ENTRY_KEYS, where, problems)
    entry = Entry(
        tag=tag,
        aliases=_tags(raw.get("aliases"), where, "aliases", problems),
        title=_string(raw.get("title"), where, "title", problems, required=True, max_len=MAX_TITLE),
        when=_string(raw.get("when"), where, "when", problems, required=True, max_len=MAX_WHEN),
        steps=_strings(raw.get("steps"), where, "steps", problems, max_items=MAX_STEPS, max_len=MAX_ITEM),
        phrases=_strings(raw.get("phrases"), where, "phrases", problems, max_items=MAX_PHRASES, max_len=MAX_ITEM),
        cases=_strings(raw.get("cases"), where, "cases", problems, max_items=MAX_CASES, max_len=MAX_ITEM * 2),
        links=_links(raw.get("links"), where, problems),
        roles=_codes(raw.get("roles"), where, "roles", ROLES, problems),
        concerns=_codes(raw.get("concerns"), where, "concerns", concerns, problems),
        related=_tags(raw.get("related"), where, "related", problems),
        source=file,
    )
    if "steps" not in raw:
        problems.add(where, "missing required key 'steps'")
    elif not entry.steps:
        problems.add(where, "steps must list at least one step")
    if len(entry.related) > MAX_RELATED:
        problems.add(where, f"related has {len(entry.related)} tags; at most {MAX_RELATED} buttons fit")
    return entry if tag else None


def _parse_command(raw: Any, file: str, index: int, problems: _Problems) -> Command | None:
    where = f"{file}: command {index}"
    if not isinstance(raw, dict):
        problems.add(where, "must be a table ([[command]])")
        return None
    tag = _tag(raw.get("tag"), where, "tag", problems)
    if tag:
        where = f"{file}: command {index} (#{tag})"
    _unknown_keys(raw, COMMAND_KEYS, where, problems)
    command = Command(
        tag=tag,
        aliases=_tags(raw.get("aliases"), where, "aliases", problems),
        usage=_string(raw.get("usage"), where, "usage", problems, required=False, max_len=30),
        description=_string(raw.get("description"), where, "description", problems, required=True, max_len=40),
        roles=_codes(raw.get("roles"), where, "roles", ROLES, problems),
        handler=_string(raw.get("handler"), where, "handler", problems, required=True, max_len=30),
        source=file,
    )
    return command if tag else None


def _check_rendered(playbook: Playbook, problems: _Problems) -> None:
    """Every card must render within the platforms' limits without being cut."""
    for entry in playbook.entries:
        where = f"{entry.source}: entry #{entry.tag}"
        card = playbook.card(entry)
        parts = split_markdown(wecom_markdown(card))
        if len(parts) > MAX_WECOM_PARTS:
            size = len(wecom_markdown(card).encode("utf-8"))
            problems.add(
                where,
                f"too long for chat: {size} bytes would need {len(parts)} WeCom messages "
                f"(at most {MAX_WECOM_PARTS} × 2048 bytes); shorten steps, phrases or cases",
            )
            continue
        _key, param = dingtalk_message(card)
        if TRUNCATED in param["text"]:
            problems.add(where, "too long for one DingTalk message; shorten steps, phrases or cases")


def parse_playbook(
    files: Sequence[tuple[str, str]], source: str = "", *, concerns: Sequence[str] | None = None
) -> Playbook:
    """Build a playbook from ``(file name, TOML text)`` pairs; raise :class:`PlaybookError`.

    ``concerns`` are the concern codes an entry may answer; by default the packaged
    lexicon's (``nlp/lexicon/data/concerns.toml``), so the extractor and the playbook
    share one vocabulary. Pass a deployment's codes when its lexicon adds concerns.
    """
    allowed_concerns = tuple(concerns) if concerns is not None else concern_codes()
    problems = _Problems()
    entries: list[Entry] = []
    commands: list[Command] = []
    for name, text in files:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.add(name, f"not valid TOML: {exc}")
            continue
        _unknown_keys(data, FILE_KEYS, name, problems)
        raw_entries = data.get("entry", [])
        raw_commands = data.get("command", [])
        if not isinstance(raw_entries, list):
            problems.add(name, "entries must be written as [[entry]] tables")
            raw_entries = []
        if not isinstance(raw_commands, list):
            problems.add(name, "commands must be written as [[command]] tables")
            raw_commands = []
        entries.extend(e for i, raw in enumerate(raw_entries, 1) if (e := _parse_entry(raw, name, i, problems, allowed_concerns)))
        commands.extend(c for i, raw in enumerate(raw_commands, 1) if (c := _parse_command(raw, name, i, problems)))

    owners: dict[str, str] = {}
    for kind, item in [("entry", e) for e in entries] + [("command", c) for c in commands]:
        for tag in item.names:
            norm = normalize_tag(tag)
            here = f"{item.source}: {kind} #{item.tag}"
            if norm in owners:
                problems.add(here, f"#{tag} is already used by {owners[norm]}")
            else:
                owners[norm] = here
    concern_owner: dict[str, str] = {}
    for entry in entries:
        for code in entry.concerns:
            if code in concern_owner:
                problems.add(
                    f"{entry.source}: entry #{entry.tag}",
                    f"concern {code!r} is already answered by {concern_owner[code]} (one talk track per concern)",
                )
            else:
                concern_owner[code] = f"#{entry.tag}"
    known = {normalize_tag(n) for e in entries for n in e.names}
    for entry in entries:
        for tag in entry.related:
            if normalize_tag(tag) not in known:
                problems.add(f"{entry.source}: entry #{entry.tag}", f"related tag #{tag} is not a playbook entry")
    if not problems.items and not entries:
        problems.add(source or "playbook", "no [[entry]] found: the playbook is empty")
    if not problems.items and not any(c.ours for c in commands):
        problems.add(source or "playbook", "no help command: add a [[command]] with handler = \"playbook\" (#帮助)")
    playbook = Playbook(entries=tuple(entries), commands=tuple(commands), source=source)
    if not problems.items:
        _check_rendered(playbook, problems)
    if problems.items:
        raise PlaybookError(problems.items)
    return playbook


def playbook_files(directory: Path) -> list[Path]:
    """The ``*.toml`` files of a playbook directory, in the order they are read (by name)."""
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def resolve_dir(configured: str | Path | None) -> Path:
    """The configured ``[playbook] dir``, or the packaged talk tracks when none is set."""
    return Path(configured) if configured else PACKAGED_DIR


def load_playbook(directory: str | Path | None = None, *, concerns: Sequence[str] | None = None) -> Playbook:
    """Load and validate every ``*.toml`` in ``directory`` (default: the packaged one).

    ``concerns``: see :func:`parse_playbook`.
    """
    path = resolve_dir(directory)
    if not path.is_dir():
        raise PlaybookError([f"{path}: playbook directory not found"])
    files: list[tuple[str, str]] = []
    problems: list[str] = []
    for file in playbook_files(path):
        try:
            files.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}: cannot read: {exc}")
    if not files and not problems:
        problems.append(f"{path}: no *.toml files")
    if problems:
        raise PlaybookError(problems)
    return parse_playbook(files, source=str(path), concerns=concerns)

