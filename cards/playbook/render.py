"""Cards built from the playbook: a talk track, the #帮助 overview, "not found", note-card buttons.

Kept apart from the model so the wording and layout of what reps see can change without
touching lookup or validation; the loader renders every entry through these functions to
prove it fits the chat platforms' limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cards.model import Button, Card
from cards.playbook.limits import MAX_RELATED, MAX_TAG, TALK_TRACK_BUTTONS_MAX
from cards.textutil import clip

if TYPE_CHECKING:
    from cards.playbook.model import Entry, Playbook

# How a role is named on the help card. The roles themselves are storage.org.ROLES;
# tests check that every one of them has a label here.
ROLE_LABELS = {
    "rep": "销售代表",
    "manager": "经理",
    "director": "总监",
    "sales_ops": "销售运营",
    "marketing": "市场",
    "finance": "财务",
    "admin": "管理员",
}


def entry_card(playbook: Playbook, entry: Entry) -> Card:
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
        if (target := playbook.find(tag)) is not None
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


def help_card(playbook: Playbook, role: str) -> Card:
    """What ``role`` can type: commands first, then the talk tracks."""
    commands = [c for c in playbook.commands if c.allowed(role)]
    entries = [e for e in playbook.entries if e.allowed(role)]
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


def not_found_card(playbook: Playbook, tag: str, role: str) -> Card:
    """The answer to an unknown #tag: the closest tags the role may use, as text and buttons."""
    suggestions = playbook.suggest(tag, role=role)
    shown = clip(tag, MAX_TAG * 2)
    if suggestions:
        text = f"没有找到 #{shown}，您是不是想找：{' '.join(suggestions)}\n发送 #帮助 查看全部话术和命令。"
    else:
        text = f"没有找到 #{shown}。发送 #帮助 查看全部话术和命令。"
    buttons = []
    for suggestion in suggestions:
        target = playbook.find(suggestion)
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

