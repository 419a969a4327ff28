"""#tags in a message → the company's talk track for it, without losing the rest.

"客户说太贵了 #价格" answers with the price card only; the text without the tags is
re-dispatched (marked ``AFTER_TAG``) and becomes a note only if it names a customer or an
action ("华山医院王主任嫌贵，周五前重新报价 #价格"). ``#帮助`` lists
what the sender's role can type. An unknown tag gets the closest tags. Tags that another
feature answers (``#待办``, ``#客户`` — listed as ``[[command]]`` in the playbook TOML)
are let through untouched. Every card served is counted in ``playbook_usage`` for
managers' reports.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.context import AppContext
from bot.messages import Inbound, Reply
from bot.router import (
    HASHTAG,
    SKIP,
    HandlerContext,
    HandlerResult,
    Router,
    event,
    hashtag,
    with_text,
)
from cards.playbook import Entry, Playbook, PlaybookService
from handlers.common.format import AFTER_TAG, outcome_label
from storage.models import PlaybookUsage

MAX_CARDS = 3
_MEANINGFUL = re.compile(r"[\w\u4e00-\u9fff]")
_SPACES = re.compile(r"[ \t\u3000]{2,}")


def _restricted(entry: Entry) -> Reply:
    return Reply(text=f"#{entry.tag} 的内容暂未对您的角色开放。发送 #帮助 查看您可用的话术。", tag="playbook.restricted")


class _Resolution:
    """What the tags in one message mean."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.served: list[Entry] = []
        self.rest: str = ""


def _resolve(playbook: Playbook, text: str, role: str) -> _Resolution | None:
    """Replies for every tag in ``text`` and the text left without them.

    None when a tag belongs to another feature: the whole message is theirs.
    """
    out = _Resolution()
    pieces: list[str] = []
    last = 0
    cards = 0
    seen: set[str] = set()
    for match in HASHTAG.finditer(text):
        name = match.group(1)
        remainder = ""
        entry = playbook.find(name)
        command = playbook.command(name)
        if entry is None and command is None:
            split = playbook.split_known_prefix(name)
            if split is not None:  # "#价格客户嫌贵": the tag, then text typed without a space
                name, remainder = split
                entry, command = playbook.find(name), playbook.command(name)
        if command is not None and not command.ours:
            return None
        pieces.append(text[last : match.start()])
        pieces.append(" " + remainder if remainder else " ")
        last = match.end()
        key = (entry.tag if entry else command.tag if command else "?" + name).casefold()
        if key in seen:
            continue
        seen.add(key)
        if command is not None:
            out.replies.append(Reply(card=playbook.help_card(role), tag="playbook.help"))
        elif entry is None:
            out.replies.append(Reply(card=playbook.not_found_card(name, role), tag="playbook.unknown"))
        elif not entry.allowed(role):
            out.replies.append(_restricted(entry))
        elif cards < MAX_CARDS:
            cards += 1
            out.served.append(entry)
            out.replies.append(Reply(card=playbook.card(entry), tag="playbook"))
    pieces.append(text[last:])
    out.rest = _SPACES.sub(" ", "".join(pieces)).strip()
    return out


def _meaningful(rest: str) -> bool:
    """Worth recording as a note: at least two letters/characters, not just punctuation."""
    return len(_MEANINGFUL.findall(rest)) >= 2


def _record(hc: HandlerContext, entries: list[Entry], via: str) -> None:
    for entry in entries:
        hc.session.add(PlaybookUsage(person_id=hc.person.id, tag=entry.tag, via=via, at=hc.now))


def router(app: AppContext) -> Router:
    r = Router("playbook")

    @r.on(hashtag())
    async def tagged(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        resolution = _resolve(hc.app.services.playbook, msg.text, hc.person.role)
        if resolution is None:
            return SKIP
        _record(hc, resolution.served, "hashtag")
        replies = list(resolution.replies)
        if _meaningful(resolution.rest) and HASHTAG.search(resolution.rest) is None:
            rest = with_text(msg, resolution.rest)
            rest = replace(rest, extra={**rest.extra, AFTER_TAG: True})  # a note only if it names a customer or an action
            replies.extend(await hc.redispatch(rest))
        return replies

    @r.on(event("card_click"))
    async def clicked(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        """A tapped talk-track button ("#价格"): same card, counted as via=button.

        Anything else (or a button that also carries other text) is left to the
        generic click handler, which re-dispatches it as typed text.
        """
        key = msg.event_key.strip()
        match = HASHTAG.fullmatch(key)
        playbook = hc.app.services.playbook
        entry = playbook.find(match.group(1)) if match else None
        if entry is None or not entry.allowed(hc.person.role):
            return SKIP
        _record(hc, [entry], "button")
        replies = [Reply(card=playbook.card(entry), tag="playbook")]
        code = str(msg.extra.get("reply_response_code") or "")
        if code:
            return [Reply(text=outcome_label(replies), update_token=code), *replies]
        return replies

    return r


def background(app: AppContext) -> PlaybookService:
    """The watcher that reloads the playbook when sales ops edit the TOML files."""
    return app.services.playbook_service
