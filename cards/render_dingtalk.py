"""DingTalk (钉钉) renderings of a :class:`~cards.model.Card`.

Two APIs send robot messages and they take different shapes:

* the enterprise robot API (``/v1.0/robot/oToMessages/batchSend``,
  ``/v1.0/robot/groupMessages/send``) takes ``msgKey`` + ``msgParam`` where
  ``msgParam`` is a JSON *string*: :func:`dingtalk_message` returns
  ``(msgKey, msgParam dict)`` — dump it with ``json.dumps(param, ensure_ascii=False)``
  (or use :func:`dingtalk_message_json`);
* the custom group robot webhook and the ``sessionWebhook`` of a received message take
  ``{"msgtype": "markdown" | "actionCard", …}``: :func:`dingtalk_webhook_payload`.

Message keys (open.dingtalk.com/document/development/robot-message-type,
"机器人发送消息的类型"): ``sampleText`` {content}, ``sampleMarkdown`` {title, text},
``sampleActionCard`` {title, text, singleTitle, singleURL} (one button),
``sampleActionCard2`` … ``sampleActionCard5`` {title, text, actionTitleN, actionURLN}
(2–5 vertical buttons; ``sampleActionCard6`` is two horizontal buttons and is not used).
There is no ``sampleActionCard1``.

A button that sends a command back to the bot opens
``dtmd://dingtalkclient/sendMessage?content=<url-encoded command>``: DingTalk then sends
the command as if the user had typed it, so it reaches the bot as a normal message.

Limits kept here: the webhook rejects bodies over 20,000 bytes (errcode 460101 "请保持
大小在 20000bytes 以内"); markdown is rendered reliably only up to roughly 3,500
characters; the ActionCard ``title`` (shown in the conversation list) is at most 64
characters, ``singleTitle`` at most 20 and ``singleURL`` at most 500 (DingTalk ActionCard
field docs). We keep the
serialized ``msgParam``/``markdown`` under 15,000 bytes even with ``ensure_ascii=True``
escaping, and button titles under 20 characters.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from cards.model import Button, Card
from cards.textutil import clean, clip, escape_markdown, safe_url, single_line

TEXT_MAX_CHARS = 3500
PARAM_MAX_BYTES = 15000
TITLE_MAX = 64
BUTTON_TITLE_MAX = 20
BUTTONS_MAX = 5
BUTTON_URL_MAX = 500
DEFAULT_TITLE = "跟进助手"
TRUNCATED = "…（内容过长，已截断）"
LINE_BREAK = "  \n"  # DingTalk markdown needs two trailing spaces (or a blank line) to break a line


def command_url(command: str) -> str:
    """The ``dtmd://`` link that makes DingTalk send ``command`` to the bot on tap."""
    return "dtmd://dingtalkclient/sendMessage?content=" + quote(clean(command).strip(), safe="")


def _button_url(button: Button) -> str:
    """The URL a button opens, or '' when it cannot work (empty, unsafe, > 500 chars)."""
    if button.command:
        url = command_url(button.command) if clean(button.command).strip() else ""
    else:
        url = safe_url(button.url)
    return url if len(url) <= BUTTON_URL_MAX else ""


def _usable_buttons(card: Card) -> list[tuple[str, str]]:
    """(title, url) for every button that can work, duplicates dropped, order kept."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for button in card.buttons:
        url = _button_url(button)
        if not url or url in seen:
            continue
        seen.add(url)
        out.append((clip(single_line(button.label), BUTTON_TITLE_MAX) or "查看", url))
    return out


def _title(card: Card) -> str:
    return clip(single_line(card.title), TITLE_MAX) or DEFAULT_TITLE


def _markdown_lines(card: Card, link_buttons: list[tuple[str, str]]) -> list[str]:
    """Markdown paragraphs (joined with blank lines by the caller)."""
    paragraphs = [f"#### {escape_markdown(single_line(card.title)) or DEFAULT_TITLE}"]
    if card.subtitle.strip():
        paragraphs.append(f"> {escape_markdown(single_line(card.subtitle))}")
    if card.fields:
        paragraphs.append(
            LINE_BREAK.join(
                f"**{escape_markdown(single_line(f.label))}**：{escape_markdown(single_line(f.value))}" for f in card.fields
            )
        )
    for block in card.blocks:
        lines = [line for line in escape_markdown(block).split("\n")]
        text = LINE_BREAK.join(lines).strip()
        if text:
            paragraphs.append(text)
    link = safe_url(card.link)
    if link:
        paragraphs.append(f"[{escape_markdown(single_line(card.link_label)) or '查看详情'}]({link})")
    if link_buttons:
        paragraphs.append(LINE_BREAK.join(f"[{escape_markdown(title)}]({url})" for title, url in link_buttons))
    return paragraphs


def _json_size(value: Any) -> int:
    """Serialized size in the worst encoding a caller may use (``ensure_ascii=True``)."""
    return len(json.dumps(value, ensure_ascii=True).encode("utf-8"))


def _fit_text(paragraphs: list[str], param: dict[str, Any], key: str = "text") -> str:
    """Join paragraphs, dropping trailing ones until the text and the param fit."""

    def fits(text: str) -> bool:
        return len(text) <= TEXT_MAX_CHARS and _json_size({**param, key: text}) <= PARAM_MAX_BYTES

    text = "\n\n".join(paragraphs)
    if fits(text):
        return text
    kept = list(paragraphs)
    while len(kept) > 1:
        kept.pop()
        candidate = "\n\n".join(kept) + "\n\n" + TRUNCATED
        if fits(candidate):
            return candidate
    # one enormous paragraph: cut it by characters
    head = kept[0]
    low, high = 0, len(head)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(head[:mid] + TRUNCATED):
            low = mid
        else:
            high = mid - 1
    return head[:low] + TRUNCATED


def dingtalk_markdown(card: Card) -> dict[str, str]:
    """``{"title", "text"}`` — the ``sampleMarkdown`` msgParam and the webhook markdown body.

    Command buttons become tappable ``dtmd://`` links in the text.
    """
    title = _title(card)
    text = _fit_text(_markdown_lines(card, _usable_buttons(card)), {"title": title})
    return {"title": title, "text": text}


def dingtalk_text(text: str) -> tuple[str, dict[str, str]]:
    """``("sampleText", {"content"})`` for a plain reply, clipped to the same budget."""
    content = clean(text)
    if _json_size({"content": content}) > PARAM_MAX_BYTES or len(content) > TEXT_MAX_CHARS:
        content = _fit_text([content], {}, key="content")
    return "sampleText", {"content": content}


def dingtalk_message(card: Card) -> tuple[str, dict[str, str]]:
    """``(msgKey, msgParam)`` for the enterprise robot API; json.dumps the param yourself.

    No button → ``sampleMarkdown``; one → ``sampleActionCard``; 2–5 →
    ``sampleActionCard2..5``; more than five → the first five as buttons and the rest
    as ``dtmd://`` links in the text.
    """
    buttons = _usable_buttons(card)
    if not buttons:
        return "sampleMarkdown", dingtalk_markdown(card)
    shown, extra = buttons[:BUTTONS_MAX], buttons[BUTTONS_MAX:]
    title = _title(card)
    if len(shown) == 1:
        param: dict[str, str] = {"title": title, "singleTitle": shown[0][0], "singleURL": shown[0][1]}
        key = "sampleActionCard"
    else:
        param = {"title": title}
        for index, (button_title, url) in enumerate(shown, start=1):
            param[f"actionTitle{index}"] = button_title
            param[f"actionURL{index}"] = url
        key = f"sampleActionCard{len(shown)}"
    param["text"] = _fit_text(_markdown_lines(card, extra), param)
    return key, param


def dingtalk_message_json(card: Card) -> tuple[str, str]:
    """``(msgKey, msgParam JSON string)`` ready for the request body."""
    key, param = dingtalk_message(card)
    return key, json.dumps(param, ensure_ascii=False)


def dingtalk_webhook_payload(card: Card) -> dict[str, Any]:
    """Body for a custom robot webhook or a message's ``sessionWebhook``.

    No button → ``markdown``; one → ``actionCard`` with ``singleTitle``/``singleURL``;
    more → ``actionCard`` with ``btns`` (vertical, ``btnOrientation`` "0"; two buttons
    side by side, "1").
    """
    buttons = _usable_buttons(card)
    if not buttons:
        return {"msgtype": "markdown", "markdown": dingtalk_markdown(card)}
    shown, extra = buttons[:BUTTONS_MAX], buttons[BUTTONS_MAX:]
    title = _title(card)
    action: dict[str, Any] = {"title": title}
    if len(shown) == 1:
        action.update(singleTitle=shown[0][0], singleURL=shown[0][1])
    else:
        action["btnOrientation"] = "1" if len(shown) == 2 else "0"
        action["btns"] = [{"title": t, "actionURL": u} for t, u in shown]
    action["text"] = _fit_text(_markdown_lines(card, extra), action)
    return {"msgtype": "actionCard", "actionCard": action}
