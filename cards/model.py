"""One card model for every platform.

Handlers build a :class:`Card`; the channel renders it (WeCom template_card/markdown,
DingTalk markdown/actionCard, plain text). A button either sends a command back to the
bot (``command``: "接单", "完成 12", "#价格") or opens a URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    command: str = ""
    url: str = ""
    primary: bool = False

    def __post_init__(self) -> None:
        if bool(self.command) == bool(self.url):
            raise ValueError(f"button {self.label!r} needs exactly one of command or url")


@dataclass(frozen=True, slots=True)
class CardField:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Card:
    """``kind`` says what the card is for (note, reminder, question, playbook, lead …)."""

    title: str
    kind: str = "info"
    subtitle: str = ""
    fields: tuple[CardField, ...] = ()
    blocks: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    link: str = ""
    link_label: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "kind": self.kind,
            "subtitle": self.subtitle,
            "fields": [[f.label, f.value] for f in self.fields],
            "blocks": list(self.blocks),
            "buttons": [
                {"label": b.label, "command": b.command, "url": b.url, "primary": b.primary}
                for b in self.buttons
            ],
            "link": self.link,
            "link_label": self.link_label,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Card:
        return cls(
            title=data["title"],
            kind=data.get("kind", "info"),
            subtitle=data.get("subtitle", ""),
            fields=tuple(CardField(label, value) for label, value in data.get("fields", [])),
            blocks=tuple(data.get("blocks", [])),
            buttons=tuple(
                Button(b["label"], command=b.get("command", ""), url=b.get("url", ""), primary=b.get("primary", False))
                for b in data.get("buttons", [])
            ),
            link=data.get("link", ""),
            link_label=data.get("link_label", ""),
            meta=dict(data.get("meta", {})),
        )
