"""Plain-text rendering for the local chat and as the fallback on every platform.

A local user cannot tap a button, so every command button is shown as the exact text
to type ("回复「#价格」…"); link buttons show their URL.
"""

from __future__ import annotations

from cards.model import Card
from cards.textutil import clean, single_line

RULE = "—" * 12


def render_text(card: Card) -> str:
    lines = [f"【{single_line(card.title)}】"]
    if card.subtitle.strip():
        lines.append(single_line(card.subtitle))
    lines.extend(f"{single_line(f.label)}：{single_line(f.value)}" for f in card.fields)
    for block in card.blocks:
        text = clean(block).strip("\n")
        if text.strip():
            if len(lines) > 1:
                lines.append("")
            lines.append(text)
    if card.link:
        lines.append(f"{single_line(card.link_label) or '链接'}：{single_line(card.link)}")
    commands = [b for b in card.buttons if b.command]
    links = [b for b in card.buttons if b.url]
    if commands or links:
        lines.append(RULE)
    for b in commands:
        command, label = single_line(b.command), single_line(b.label)
        lines.append(f"回复「{command}」" + (label if label and label != command else ""))
    for b in links:
        lines.append(f"{single_line(b.label)}：{single_line(b.url)}")
    return "\n".join(lines)
