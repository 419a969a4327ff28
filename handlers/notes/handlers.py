"""A rep's free-text or spoken follow-up → a stored note, a compact card and maybe one question.

This is the catch-all for rep messages that say something about a customer; commands,
corrections and pending answers are routed before it. Chatter ("收到", "辛苦了👍") is
not a note: nothing is stored and nothing is answered, because answering an
acknowledgement only invites another one.
"""

from __future__ import annotations

import re

from bot.context import AppContext
from bot.messages import Inbound, Kind, Reply
from bot.router import HASHTAG, SKIP, HandlerContext, HandlerResult, Router, kind
from handlers.common.dates import local_now
from handlers.notes.cards import note_card
from handlers.notes.dialog import ask_next, ask_past_due
from handlers.notes.extraction import extract, is_chatter, to_draft
from handlers.notes.service import note_for_inbox, note_rules, record_note

VOICE_FAILED = "抱歉，这条语音没能识别出文字{why}。请再说一遍，或者直接打字告诉我。"
VOICE_EMPTY = "这条语音里没有听到内容，请再说一遍，或者直接打字告诉我。"
VOICE_NOTHING = "🎤 听到：「{heard}」\n这条语音里没有需要记录的跟进内容。如果没听对，请再说一遍，或者直接打字告诉我。"
HEARD_MAX = 60


def _only_hashtags(text: str) -> bool:
    return not HASHTAG.sub("", text).strip(" \t\r\n，。,.!！?？")


async def handle_note(app: AppContext, msg: Inbound, hc: HandlerContext, text: str, *, source: str, transcript: str) -> HandlerResult:
    """Store ``text`` as a note from ``hc.person`` and build the reply card."""
    if hc.inbox_id is not None and await note_for_inbox(hc.session, hc.inbox_id) is not None:
        return None  # this message already became a note (a redispatched copy); never two notes
    extracted = extract(app, text, hc.now)
    if extracted.is_empty():
        if source == "voice":  # a rep who sent a memo always hears back what we understood
            heard = text if len(text) <= HEARD_MAX else text[: HEARD_MAX - 1] + "…"
            return Reply(text=VOICE_NOTHING.format(heard=heard), tag="note.voice_empty")
        if is_chatter(app, text):
            return None
        return SKIP  # a greeting or a question: let help/fallback answer it
    draft = to_draft(extracted, text, source=source, transcript=transcript)
    recorded = await record_note(
        hc.session,
        hc.person,
        draft,
        inbox_id=hc.inbox_id,
        rules=note_rules(app),
        now=hc.now,
    )
    if recorded.past_due is not None and recorded.task is not None:
        question = await ask_past_due(app, hc.session, recorded.note, recorded.task, person_id=hc.person.id, now=hc.now)
    else:
        question = await ask_next(app, hc.session, recorded.note, recorded.task, person_id=hc.person.id, now=hc.now)
    card = note_card(
        app,
        recorded.note,
        account=recorded.account,
        opportunity=recorded.opportunity,
        task=recorded.task,
        question=question,
        stage_kept=recorded.stage_kept,
        today=local_now(app, hc.now).date(),
        role=hc.person.role,
    )
    app.log.info("notes.recorded", note_id=recorded.note.id, person=hc.person.key, source=source,
                 stage=draft.stage, question=bool(question))
    return Reply(card=card, tag="note")


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
        return await handle_note(app, msg, hc, transcript, source="voice", transcript=transcript)

    return r

