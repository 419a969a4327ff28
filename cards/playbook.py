"""The sales playbook: talk tracks sales ops write in TOML, served to reps by #tag.

Sales ops own the content and edit it without code, so loading is strict and every
problem names the file, the entry and what is wrong, and a running server keeps serving
the last good playbook when an edit is broken (:class:`PlaybookService`).

A directory holds ``*.toml`` files (read in name order). Each file may contain:

* ``[[entry]]`` — a talk track: ``tag``, ``aliases``, ``title``, ``when``, ``steps``,
  ``phrases``, ``cases``, ``links`` (``{label, url}``), ``roles`` (default: everyone),
  ``concerns`` (extraction concern codes it answers), ``related`` (tags offered as
  buttons).
* ``[[command]]`` — a command for ``#帮助``: ``tag``, ``aliases``, ``usage``,
  ``description``, ``roles``, ``handler`` (``"playbook"`` for the ones this module
  answers, e.g. ``#帮助``; anything else means another feature answers it, and the
  playbook router must let the message through).
"""

from __future__ import annotations

import asyncio
import difflib
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from cards.model import Button, Card
from cards.textutil import clip

PACKAGED_DIR = Path(__file__).with_name("playbook")

ROLES = ("rep", "manager", "sales_ops", "admin")
ROLE_LABELS = {"rep": "销售代表", "manager": "经理", "sales_ops": "销售运营", "admin": "管理员"}
CONCERNS = (
    "price",
    "budget",
    "competitor",
    "process",
    "product",
    "clinical",
    "delivery",
    "compliance",
    "service",
    "relationship",
)
PLAYBOOK_HANDLER = "playbook"

# Content limits. Titles are shown as a WeCom template-card title (≤ 26 characters);
# the whole rendered card must fit in at most two WeCom markdown messages (2048 bytes
# each) and in one DingTalk message without truncation — checked on the rendered card.
MAX_TAG = 16
MAX_TITLE = 26
MAX_WHEN = 80
MAX_ITEM = 160
MAX_STEPS = 8
MAX_PHRASES = 6
MAX_CASES = 3
MAX_LINKS = 4
MAX_RELATED = 4
MAX_WECOM_PARTS = 2
TALK_TRACK_BUTTONS_MAX = 3

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


def normalize_tag(tag: str) -> str:
    """Comparable form: full-width → ASCII (＃ → #, Ｐ → P), no leading #, case-folded."""
    return unicodedata.normalize("NFKC", tag or "").strip().lstrip("#").strip().casefold()


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Entry:
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

    # ---- cards -------------------------------------------------------------------

    def card(self, entry: Entry) -> Card:
        """The talk-track card a rep sees."""
        blocks: list[str] = []
        if entry.steps:
            blocks.append("【怎么做】\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(entry.steps, start=1)))
        if entry.phrases:
            blocks.append("【可以这样说】\n" + "\n".join(f"· {p}" for p in entry.phrases))
        if entry.cases:
            blocks.append("【案例（示例，供参考）】\n" + "\n".join(f"· {c}" for c in entry.cases))
        if len(entry.links) > 1:
            blocks.append("【更多资料】\n" + "\n".join(f"· {l.label}：{l.url}" for l in entry.links[1:]))
        buttons = tuple(
            Button(button_label(target), command=f"#{target.tag}")
            for tag in entry.related[:MAX_RELATED]
            if (target := self.find(tag)) is not None
        )
        first = entry.links[0] if entry.links else None
        return Card(
            title=entry.title,
            kind="playbook",
            subtitle=f"适用：{entry.when}",
            blocks=tuple(blocks),
            buttons=buttons,
            link=first.url if first else "",
            link_label=first.label if first else "",
            meta={"tag": entry.tag},
        )

    def help_card(self, role: str) -> Card:
        """What ``role`` can type: commands first, then the talk tracks."""
        commands = [c for c in self.commands if c.allowed(role)]
        entries = [e for e in self.entries if e.allowed(role)]
        blocks: list[str] = []
        if commands:
            blocks.append(
                "【命令】\n" + "\n".join(f"· {c.usage or '#' + c.tag}：{c.description}" for c in commands)
            )
        if entries:
            lines = []
            for e in entries:
                alias = f"（{'、'.join('#' + a for a in e.aliases[:2])}）" if e.aliases else ""
                lines.append(f"· #{e.tag}{alias}：{e.title}")
            blocks.append("【话术】在对话里随时发送，例如「客户说太贵了 #价格」\n" + "\n".join(lines))
        return Card(
            title="跟进助手能做什么",
            kind="help",
            subtitle=f"您的角色：{ROLE_LABELS.get(role, role)}",
            blocks=tuple(blocks),
        )

    def not_found_card(self, tag: str, role: str) -> Card:
        suggestions = self.suggest(tag, role=role)
        shown = clip(tag, MAX_TAG * 2)
        if suggestions:
            text = f"没有找到 #{shown}，您是不是想找：{' '.join(suggestions)}\n发送 #帮助 查看全部话术和命令。"
        else:
            text = f"没有找到 #{shown}。发送 #帮助 查看全部话术和命令。"
        buttons = []
        for suggestion in suggestions:
            target = self.find(suggestion)
            label = button_label(target) if target is not None else f"查看{suggestion.lstrip('#')}"
            buttons.append(Button(label, command=suggestion))
        return Card(title=f"没有找到 #{shown}", kind="question", blocks=(text,), buttons=tuple(buttons))


def button_label(entry: Entry) -> str:
    """A short button text (WeCom buttons show at most 10 characters)."""
    return clip(f"{entry.tag}话术", 10)


def talk_track_buttons(
    playbook: Playbook | None,
    concerns: Iterable[str],
    *,
    competitors: Iterable[str] = (),
    role: str | None = None,
) -> list[Button]:
    """One-tap talk-track buttons for the concerns a note recorded (note card).

    Button command is the tag ("#价格"), so a tap works like typing it. When the note
    names a competitor that has its own entry ("迈瑞" → #迈瑞), that entry is offered
    instead of the generic competitor talk track.
    """
    if playbook is None:
        return []
    brands = [e for name in competitors if (e := playbook.find(name)) is not None]
    buttons: list[Button] = []
    seen: set[str] = set()
    for code in concerns:
        entry = playbook.for_concern(code)
        if code == "competitor" and brands:
            entry = brands[0]
        if entry is None or entry.tag in seen or (role is not None and not entry.allowed(role)):
            continue
        seen.add(entry.tag)
        buttons.append(Button(button_label(entry), command=f"#{entry.tag}"))
        if len(buttons) == TALK_TRACK_BUTTONS_MAX:
            break
    return buttons


# ---- loading and validation ----------------------------------------------------------


class _Problems:
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


def _parse_entry(raw: Any, file: str, index: int, problems: _Problems) -> Entry | None:
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
        concerns=_codes(raw.get("concerns"), where, "concerns", CONCERNS, problems),
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
    from cards.render_dingtalk import TRUNCATED, dingtalk_message
    from cards.render_wecom import split_markdown, wecom_markdown

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


def parse_playbook(files: Sequence[tuple[str, str]], source: str = "") -> Playbook:
    """Build a playbook from ``(file name, TOML text)`` pairs; raise :class:`PlaybookError`."""
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
        entries.extend(e for i, raw in enumerate(raw_entries, 1) if (e := _parse_entry(raw, name, i, problems)))
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
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def resolve_dir(configured: str | Path | None) -> Path:
    return Path(configured) if configured else PACKAGED_DIR


def load_playbook(directory: str | Path | None = None) -> Playbook:
    """Load and validate every ``*.toml`` in ``directory`` (default: the packaged one)."""
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
    return parse_playbook(files, source=str(path))


# ---- the running service --------------------------------------------------------------

Signature = tuple[tuple[str, int, int], ...]


def _signature(directory: Path) -> Signature:
    try:
        files = playbook_files(directory)
    except OSError:
        return ()
    out: list[tuple[str, int, int]] = []
    for file in files:
        try:
            st = file.stat()
        except OSError:
            continue
        out.append((file.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


class PlaybookService:
    """Holds the current playbook and reloads it when the files change.

    With ``watch`` the files' names, mtimes and sizes are compared on every use and
    every ``interval`` seconds in the background (so a broken edit is logged promptly,
    not when a rep next asks). An invalid edit is logged with its problems and the
    last good playbook keeps serving. If the configured directory is invalid at start,
    the packaged default playbook serves until it is fixed.
    """

    def __init__(self, directory: str | Path | None, *, watch: bool = True, interval: float = 1.0, log: Any = None) -> None:
        self.directory = resolve_dir(directory)
        self.watch = watch
        self.interval = interval
        self.log = log or structlog.get_logger("genjin.playbook")
        self.problems: list[str] = []
        self.reloads = 0
        self._playbook: Playbook | None = None
        self._signature: Signature | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> Playbook:
        if self._playbook is None:
            self._initial_load()
        elif self.watch:
            self.refresh()
        assert self._playbook is not None
        return self._playbook

    def _initial_load(self) -> None:
        self._signature = _signature(self.directory)
        try:
            self._playbook = load_playbook(self.directory)
            self.problems = []
        except PlaybookError as exc:
            self.problems = exc.problems
            self.log.error("playbook.invalid", directory=str(self.directory), problems=exc.problems, serving="packaged default")
            self._playbook = load_playbook(PACKAGED_DIR)

    def refresh(self) -> bool:
        """Reload if the files changed. True when a new playbook was taken into use."""
        if self._playbook is None:
            self._initial_load()
            return True
        signature = _signature(self.directory)
        if signature == self._signature:
            return False
        self._signature = signature  # a broken edit is reported once, not on every use
        try:
            playbook = load_playbook(self.directory)
        except PlaybookError as exc:
            self.problems = exc.problems
            self.log.error("playbook.reload_rejected", directory=str(self.directory), problems=exc.problems, serving="last good playbook")
            return False
        self._playbook = playbook
        self.problems = []
        self.reloads += 1
        self.log.info("playbook.reloaded", directory=str(self.directory), entries=len(playbook.entries))
        return True

    async def start(self) -> None:
        _ = self.current
        if self.watch and self._task is None:
            self._task = asyncio.create_task(self._poll(), name="playbook-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the watcher must survive anything a file system does
                self.log.exception("playbook.watch_failed")
