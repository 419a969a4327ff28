"""WeCom (企业微信) renderings of a :class:`~cards.model.Card`.

Two shapes:

* ``template_card`` (模板卡片) — compact, with buttons that call the bot back
  (``button_interaction``) or a plain notice (``text_notice``). Used for short cards.
* ``markdown`` — the whole card, for long content (a playbook talk track). An app
  message's markdown content is at most 2048 UTF-8 bytes, so long cards are split
  with :func:`split_markdown` and sent as several messages.

Limits, from the WeCom docs "发送应用消息" (developer.work.weixin.qq.com/document/path/90236,
template card structures also at /document/path/90372 and the robot page /91770):

* ``task_id``: digits, letters and ``_-@`` only, at most 128 bytes, unique per app;
  required for ``button_interaction``.
* ``main_title.title`` "建议不超过26个字" (newer app docs say 36; we keep the stricter 26),
  ``main_title.desc`` ≤ 30, ``sub_title_text`` ≤ 112 (newer: 160).
* ``horizontal_content_list`` ≤ 6 items, ``keyname`` ≤ 5 chars, ``value`` ≤ 26 chars.
* ``jump_list`` ≤ 3 items, ``title`` ≤ 13 chars (newer: 18).
* ``card_action`` is required for ``text_notice`` (type 1 = open ``url``).
* ``button_list`` ≤ 6 buttons, required for ``button_interaction``; ``text`` ≤ 10 chars,
  ``style`` 1–4, ``key`` ≤ 1024 bytes and unique (it comes back as the callback EventKey);
  ``type`` 1 opens ``url`` instead.
* markdown ``content`` ≤ 2048 bytes UTF-8 (app messages; the group robot allows 4096).

Nothing here raises on odd input: values are clipped, unusable buttons dropped.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from cards.model import Button, Card
from cards.textutil import clean, clip, escape_markdown, safe_url, single_line, utf8_len

MARKDOWN_MAX_BYTES = 2048
TASK_ID_MAX_BYTES = 128
TITLE_MAX = 26
TITLE_DESC_MAX = 30
SUB_TITLE_MAX = 112
HORIZONTAL_MAX_ITEMS = 6
KEYNAME_MAX = 5
VALUE_MAX = 26
JUMP_TITLE_MAX = 13
BUTTONS_MAX = 6
BUTTON_TEXT_MAX = 10
BUTTON_KEY_MAX_BYTES = 1024
SOURCE_DESC = "跟进助手"
DEFAULT_CARD_URL = "https://work.weixin.qq.com/"

_TASK_ID_BAD = re.compile(r"[^0-9A-Za-z_\-@]")


def wecom_task_id(raw: str) -> str:
    """A valid ``task_id`` from any string: bad characters become ``_``, ≤ 128 bytes.

    Callers should pass something unique (e.g. ``f"genjin-{outbox_id}"``); if cleaning
    makes it empty, a hash of the raw value keeps it unique and non-empty.
    """
    cleaned = _TASK_ID_BAD.sub("_", raw or "")[:TASK_ID_MAX_BYTES]
    if not cleaned.strip("_"):
        cleaned = "t" + hashlib.sha1((raw or "").encode("utf-8")).hexdigest()
    return cleaned


def _button_entry(button: Button, primary_style: bool) -> dict[str, Any] | None:
    text = clip(single_line(button.label), BUTTON_TEXT_MAX) or "查看"
    style = 1 if primary_style else 2
    if button.command:
        key = clean(button.command).strip()
        if not key or utf8_len(key) > BUTTON_KEY_MAX_BYTES:
            return None  # a clipped command would do something else: better no button
        return {"type": 0, "text": text, "style": style, "key": key}
    url = safe_url(button.url)
    if not url:
        return None
    return {"type": 1, "text": text, "style": style, "url": url}


def _buttons(card: Card) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    has_primary = any(b.primary for b in card.buttons)
    for index, button in enumerate(card.buttons):
        entry = _button_entry(button, button.primary or (not has_primary and index == 0))
        if entry is None:
            continue
        ident = entry.get("key") or entry.get("url", "")
        if ident in seen:
            continue
        seen.add(ident)
        entries.append(entry)
        if len(entries) == BUTTONS_MAX:
            break
    return entries


def _sub_title(card: Card) -> str:
    return clip(clean("\n".join(b.strip() for b in card.blocks if b.strip())), SUB_TITLE_MAX)


def wecom_template_card(card: Card, *, task_id: str, default_url: str = DEFAULT_CARD_URL) -> dict[str, Any]:
    """The ``template_card`` object (the value under ``"template_card"``) for ``card``.

    With usable buttons it is a ``button_interaction`` card (clicks come back as
    ``template_card_event`` with the button's command as EventKey); otherwise a
    ``text_notice`` whose required ``card_action`` opens the card link or
    ``default_url``. Works for ``message/send`` and ``update_template_card`` alike.
    """
    title = clip(single_line(card.title), TITLE_MAX)
    sub_title = _sub_title(card)
    if not title and not sub_title:
        title = SOURCE_DESC  # main_title.title or sub_title_text must be present
    body: dict[str, Any] = {
        "source": {"desc": SOURCE_DESC, "desc_color": 0},
        "main_title": {"title": title},
    }
    desc = clip(single_line(card.subtitle), TITLE_DESC_MAX)
    if desc:
        body["main_title"]["desc"] = desc
    if sub_title:
        body["sub_title_text"] = sub_title
    fields = [
        {"keyname": clip(single_line(f.label), KEYNAME_MAX) or "-", "value": clip(single_line(f.value), VALUE_MAX)}
        for f in card.fields[:HORIZONTAL_MAX_ITEMS]
    ]
    if fields:
        body["horizontal_content_list"] = fields
    link = safe_url(card.link)
    if link:
        body["jump_list"] = [{"type": 1, "title": clip(single_line(card.link_label) or "查看详情", JUMP_TITLE_MAX), "url": link}]
    buttons = _buttons(card)
    if buttons:
        body = {"card_type": "button_interaction", **body, "task_id": wecom_task_id(task_id), "button_list": buttons}
        if link:
            body["card_action"] = {"type": 1, "url": link}
        return body
    return {"card_type": "text_notice", **body, "card_action": {"type": 1, "url": link or safe_url(default_url) or DEFAULT_CARD_URL}}


def template_card_fits(card: Card) -> bool:
    """True when the template card shows everything in ``card`` without clipping."""
    blocks = clean("\n".join(b.strip() for b in card.blocks if b.strip()))
    return (
        len(single_line(card.title)) <= TITLE_MAX
        and len(single_line(card.subtitle)) <= TITLE_DESC_MAX
        and len(blocks) <= SUB_TITLE_MAX
        and len(card.fields) <= HORIZONTAL_MAX_ITEMS
        and all(len(single_line(f.label)) <= KEYNAME_MAX and len(single_line(f.value)) <= VALUE_MAX for f in card.fields)
        and len(card.buttons) <= BUTTONS_MAX
        and all(len(single_line(b.label)) <= BUTTON_TEXT_MAX for b in card.buttons)
    )


def command_hint(button: Button) -> str:
    """How a person triggers a command button by typing (for text/markdown renderings)."""
    return f"「{single_line(button.command)}」{single_line(button.label)}"


def wecom_markdown(card: Card) -> str:
    """The whole card as WeCom markdown (may exceed 2048 bytes: use :func:`split_markdown`).

    Command buttons cannot be clicked in markdown, so they are listed as what to reply.
    """
    lines = [f"**{escape_markdown(single_line(card.title)) or SOURCE_DESC}**"]
    if card.subtitle.strip():
        lines.append(f'<font color="comment">{escape_markdown(single_line(card.subtitle))}</font>')
    if card.fields:
        lines.append("")
        lines.extend(f"> {escape_markdown(single_line(f.label))}：{escape_markdown(single_line(f.value))}" for f in card.fields)
    for block in card.blocks:
        text = escape_markdown(block).strip("\n")
        if text.strip():
            lines.append("")
            lines.append(text)
    link = safe_url(card.link)
    if link:
        lines.append("")
        lines.append(f"[{escape_markdown(single_line(card.link_label)) or '查看详情'}]({link})")
    url_buttons = [b for b in card.buttons if b.url and safe_url(b.url)]
    if url_buttons:
        lines.append(" ".join(f"[{escape_markdown(single_line(b.label))}]({safe_url(b.url)})" for b in url_buttons))
    commands = [b for b in card.buttons if b.command]
    if commands:
        lines.append("")
        lines.append('<font color="comment">可回复：' + "  ".join(escape_markdown(command_hint(b)) for b in commands) + "</font>")
    return "\n".join(lines)


def split_markdown(text: str, limit: int = MARKDOWN_MAX_BYTES) -> list[str]:
    """Split into messages of at most ``limit`` UTF-8 bytes, on line boundaries.

    A single line longer than ``limit`` is cut at a character boundary (which may cut
    through inline markup on that line — it cannot be helped and stays readable).
    Never returns an empty list for non-empty text, never returns empty parts.
    """
    if limit < 4:
        raise ValueError("limit must allow at least one character")
    parts: list[str] = []
    current = ""

    def flush() -> None:
        nonlocal current
        if current.strip():
            parts.append(current.strip("\n"))
        current = ""

    for line in clean(text).split("\n"):
        while utf8_len(line) > limit:
            flush()
            head = line.encode("utf-8")[:limit].decode("utf-8", errors="ignore") or line[0]
            if head.strip():
                parts.append(head)
            line = line[len(head) :]
        candidate = f"{current}\n{line}" if current else line
        if utf8_len(candidate) > limit:
            flush()
            current = line
        else:
            current = candidate
    flush()
    return parts


def wecom_messages(card: Card, *, task_id: str) -> list[dict[str, Any]]:
    """Ready message bodies (add ``touser``/``agentid``) that show all of ``card``.

    A card that fits a template card is one ``template_card``. A long card (a talk
    track) becomes markdown message(s), followed by a small ``button_interaction``
    card carrying the buttons if it has any, so nothing is clipped away.
    """
    if template_card_fits(card):
        return [{"msgtype": "template_card", "template_card": wecom_template_card(card, task_id=task_id)}]
    messages: list[dict[str, Any]] = [
        {"msgtype": "markdown", "markdown": {"content": part}} for part in split_markdown(wecom_markdown(card))
    ]
    if any(b.command or b.url for b in card.buttons):
        actions = Card(title=card.title, kind=card.kind, buttons=card.buttons, link=card.link, link_label=card.link_label)
        tc = wecom_template_card(actions, task_id=task_id)
        if tc["card_type"] == "button_interaction":
            messages.append({"msgtype": "template_card", "template_card": tc})
    return messages
