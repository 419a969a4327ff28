"""A rep's free-text or spoken follow-up → a stored note, a compact card and maybe one question.

This is the catch-all for rep messages; commands, corrections and pending answers are
routed before it. Chatter ("收到", "辛苦了👍") and small talk are not notes: nothing is
stored, and the answer is one short friendly line. Questions about the bot are left to
the fallback, which answers with the help card.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.router import HASHTAG, SKIP, HandlerContext, HandlerResult, Router, kind
from handlers.common.format import AFTER_TAG
from handlers.notes.extraction import extract, to_draft
from handlers.notes.followup import add_to_previous, small_talk, unfiled
from handlers.notes.recording import record_and_card
from handlers.notes.service import noted
from handlers.notes.unsure import hold_unsure, spans_from_extra

VOICE_FAILED = "抱歉，这条语音没能识别出文字{why}。请再说一遍，或者直接打字告诉我。"
VOICE_EMPTY = "这条语音里没有听到内容，请再说一遍，或者直接打字告诉我。"
VOICE_NOTHING = "🎤 听到：「{heard}」\n这条语音里没有需要记录的跟进内容。如果没听对，请再说一遍，或者直接打字告诉我。"
HEARD_MAX = 60


def _only_hashtags(text: str) -> bool:
    return not HASHTAG.sub("", text).strip(" \t\r\n，。,.!！?？")


async def handle_note(app: AppContext, msg: Inbound, hc: HandlerContext, text: str, *, source: str, transcript: str,
                      unsure: Sequence[Any] = ()) -> HandlerResult:
    """Store ``text`` as a note from ``hc.person`` and build the reply card.

    Every message gets an answer that says what happened: a card (recorded), a line saying
    it was added to the previous note, a friendly word for chatter, or — when there is no
    customer and no action in it — "not recorded" with one-tap ways to record it anyway.
    ``unsure``: the transcript's low-confidence spans; fields said in them are held for the
    rep's confirmation (:mod:`handlers.notes.unsure`).
    """
    if hc.inbox_id is not None and noted(hc.session, hc.inbox_id):
        return None  # this message already became a note (a redispatched copy); never two notes
    result = await _handle_note(app, msg, hc, text, source=source, transcript=transcript, unsure=unsure)
    # Writes are batched into as few flushes as possible (questions, audit rows); the last one
    # happens here, so a broken write fails inside the handler that made it.
    await hc.session.flush()
    return result


async def _handle_note(app: AppContext, msg: Inbound, hc: HandlerContext, text: str, *, source: str, transcript: str,
                       unsure: Sequence[Any]) -> HandlerResult:
    after_tag = bool(msg.extra.get(AFTER_TAG))
    extracted = extract(app, text, hc.now, session=hc.session)
    if extracted.is_empty():
        if source == "voice":  # a rep who sent a memo always hears back what we understood
            heard = text if len(text) <= HEARD_MAX else text[: HEARD_MAX - 1] + "…"
            return Reply(text=VOICE_NOTHING.format(heard=heard), tag="note.voice_empty")
        if after_tag:
            return None  # "#价格 太贵了": the talk track was the answer
        return await small_talk(app, hc, text)
    draft = hold_unsure(app, to_draft(extracted, text, source=source, transcript=transcript), unsure, hc.now)
    if after_tag and not (draft.account or draft.contacts or draft.action_text):
        return None  # "客户说太贵了 #价格" asks for a talk track; it files nothing
    if not draft.account and not draft.unsure:  # unsure fields are asked about on a card of their own
        added = await add_to_previous(app, hc, draft)
        if added is not None:
            return added
    if not (draft.account or draft.contacts or draft.action_text or draft.unsure):  # a held contact is a customer
        return await unfiled(app, hc, text, source=source)
    return await record_and_card(app, hc, draft)


def router(app: AppContext) -> Router:
    r = Router("notes")

    @r.on(kind(Kind.TEXT))
    async def text_note(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        text = msg.text.strip()
        if not text or _only_hashtags(text):
            return SKIP
        return await handle_note(app, msg, hc, text, source="text", transcript="")

    @r.on(kind(Kind.VOICE))
    async def voice_note(msg: Inbound, hc: HandlerContext) -> HandlerResult:
        transcript = str(msg.extra.get("transcript") or "").strip()
        if not transcript:
            error = str(msg.extra.get("speech_error") or "").strip()
            if "transcript" in msg.extra and not error:
                return Reply(text=VOICE_EMPTY, tag="note.voice_failed")
            why = f"（{error}）" if error and re.search(r"[\u4e00-\u9fff]", error) else ""
            return Reply(text=VOICE_FAILED.format(why=why), tag="note.voice_failed")
        if _only_hashtags(transcript):
            return SKIP
        return await handle_note(app, msg, hc, transcript, source="voice", transcript=transcript,
                                 unsure=spans_from_extra(msg.extra))

    return r

