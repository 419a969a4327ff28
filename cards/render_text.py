"""Plain-text rendering for the local chat and as the fallback on every platform."""

from __future__ import annotations

from cards.model import Card


def render_text(card: Card) -> str:
    lines = [f"【{card.title}】"]
    if card.subtitle:
        lines.append(card.subtitle)
    lines.extend(f"{f.label}：{f.value}" for f in card.fields)
    lines.extend(card.blocks)
    if card.link:
        lines.append(f"{card.link_label or '链接'}：{card.link}")
    if card.buttons:
        lines.append("  ".join(f"[{b.label}]" + (f"→ {b.command}" if b.command else f"→ {b.url}") for b in card.buttons))
    return "\n".join(lines)
