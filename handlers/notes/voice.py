"""Voice memos → text, before the note handler sees them.

Runs as a dispatcher preprocessor, outside the database transaction, because
downloading and transcribing takes seconds. The result travels in ``Inbound.extra``:
``transcript`` (the text the note is built from), ``transcript_source`` (local |
platform), ``platform_transcript`` (DingTalk's own recognition, kept when ours wins),
``audio_seconds``, ``transcript_unsure`` (the spans of ``transcript`` heard with low
confidence or rewritten by correction, as ``[start, end, probability, corrected]`` rows;
see :func:`unsure_rows`), or ``speech_error`` / ``speech_message`` when nothing usable came
out. The dispatcher stores these with the inbox row, so failures are recorded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import String, cast, null, select, union_all

from bot.context import AppContext
from bot.messages import Inbound, Kind, MediaError
from storage.db import read_session
from storage.models import Account, Contact, Lead, Note, Opportunity
from storage.people import find_person

# A rep's own terms: accounts and contacts of their notes and leads of the last REP_TERM_DAYS and
# of their open deals, most recent first, at most REP_TERM_ROWS rows. Their share of the decoder
# prompt is REP_TERM_CHARS characters (3–5 hospitals and people); the lexicon's priority terms follow.
REP_TERM_DAYS = 90
REP_TERM_ROWS = 40
REP_TERM_CHARS = 40
_LONGEST_TERM = 12  # a hospital's full legal name is too long to help the prompt; its aliases do


def repair_transcript(app: AppContext, text: str) -> str:
    """Domain repairs our own transcripts need: misheard surnames before titles (留主任 → 刘主任)."""
    from nlp.speech import correct_surnames

    people = app.services.lexicon.people
    return correct_surnames(text, people.ranked_surnames, people.titles)


async def rep_terms(app: AppContext, platform: str, sender: str) -> RepTerms:
    """What this rep most likely says, most likely first: their accounts, contacts and line products.

    Why: whisper's prompt holds only a few dozen terms and the whole lexicon cannot fit, while
    a rep names the same dozen hospitals and people week after week — often hospitals outside
    the lexicon (a county hospital is heard as a homophone city). Only the sender's own records
    are read (their notes, leads and open deals), so no other rep's or team's accounts ever
    reach the prompt. One statement; an unknown sender gets only nothing.
    """
    person = app.lookups.person(platform, sender)
    async with read_session(app.sessions) as session:
        if person is None:
            found = await find_person(session, platform, sender)
            if found is None:
                return RepTerms([], [])
            person = {"id": found.id, "product_lines": list(found.product_lines or [])}
        since = app.clock.now() - timedelta(days=REP_TERM_DAYS)
        pid = person["id"]
        text = String()
        arms = union_all(
            select(Note.account_id.label("account_id"), Contact.name.label("contact"),
                   cast(null(), text).label("hospital"), Note.created_at.label("at"))
            .outerjoin(Contact, Contact.id == Note.contact_id)
            .where(Note.author_id == pid, Note.deleted_at.is_(None), Note.created_at >= since),
            select(Opportunity.account_id, cast(null(), text), cast(null(), text), Opportunity.last_activity_at)
            .where(Opportunity.owner_id == pid, Opportunity.status == "open"),
            select(Lead.account_id, Lead.contact, Lead.hospital, Lead.created_at)
            .where(Lead.assignee_id == pid, Lead.created_at >= since),
        ).subquery()
        rows = (await session.execute(
            select(Account.name, Account.aliases, arms.c.contact, arms.c.hospital)
            .select_from(arms).outerjoin(Account, Account.id == arms.c.account_id)
            .order_by(arms.c.at.desc()).limit(REP_TERM_ROWS)
        )).all()
    terms: list[str] = []
    for name, aliases, contact, hospital in rows:
        written = [*(aliases or ()), name] if name else [hospital]
        terms.extend(w for w in written if w and len(w) <= _LONGEST_TERM)
        if contact:
            terms.append(contact)
    products = app.services.lexicon.line_products(person.get("product_lines") or ())
    return RepTerms(_dedupe(terms), _dedupe(products))


class RepTerms(NamedTuple):
    """What one rep most likely names: ``accounts`` (their hospitals' written forms and their
    contacts, most recent first) and ``products`` (of their product lines)."""

    accounts: list[str]
    products: list[str]


def _dedupe(terms: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in terms if t and t.strip()))


def memo_hotwords(app: AppContext, rep: RepTerms) -> list[str]:
    """The hotwords of one memo, most useful first (the decoder prompt keeps a prefix of ~165 characters).

    The rep's accounts and contacts (up to ``REP_TERM_CHARS``), then the lexicon's speech priority
    list (titles, funnel words, departments, the most-named brands), then the rep's products,
    then the rest of the lexicon and of the rep's terms (still used to correct near-misses).
    Why this order (measured on voice-gen-dev with a simulated rep of 8 accounts, the memo's own
    among them): 80 characters of the rep's terms and products first pushed the brands at the
    end of the priority list out of the prompt (competitors F1 0.89 → 0.33, voice → note 0.792 →
    0.773 although account accuracy rose 0.63 → 0.89); 40 characters of accounts and contacts,
    products after the priority list: account 0.77, competitors 0.75, voice → note 0.802.
    """
    head: list[str] = []
    used = 0
    for term in rep.accounts:
        if used + len(term) + 1 > REP_TERM_CHARS:
            break
        head.append(term)
        used += len(term) + 1
    lexicon = app.services.lexicon
    return _dedupe([*head, *lexicon.speech_priority, *rep.products, *lexicon.hotwords(), *rep.accounts])


def unsure_rows(app: AppContext, transcript: Any) -> list[list[object]]:
    """The transcript's unsure spans (below ``[speech] unsure_below`` or corrected), JSON-ready.

    Only the unsure ones travel: the note handler asks whether a field's words overlap one.
    """
    from nlp.speech.spans import pack, uncertain

    return pack(uncertain(getattr(transcript, "spans", ()) or (), app.config.speech.unsure_below))


def _mode(app: AppContext, msg: Inbound) -> str:
    """DingTalk may recognise speech itself; every other channel uses ours."""
    if msg.platform == "dingtalk":
        return app.config.dingtalk.voice
    return "local"


async def transcribe_voice(app: AppContext, msg: Inbound) -> Inbound:
    if msg.kind != Kind.VOICE or "transcript" in msg.extra or "speech_error" in msg.extra:
        return msg
    extra: dict[str, Any] = dict(msg.extra)
    platform_text = str(extra.get("recognition") or "").strip()
    mode = _mode(app, msg)
    log = app.log.bind(platform=msg.platform, message_id=msg.message_id, mode=mode)

    if mode == "platform" and platform_text:
        extra.update(transcript=platform_text, transcript_source="platform")
        return replace(msg, extra=extra)

    started = time.perf_counter()
    try:
        if not msg.media:
            raise MediaError("voice message without media reference")
        audio = await app.channel(msg.platform).fetch_media(msg.media, msg.media_format)
        from nlp.speech import SpeechError

        try:
            hotwords = memo_hotwords(app, await rep_terms(app, msg.platform, msg.sender))
            result = await app.services.stt.transcribe(audio, hotwords=hotwords)
        except SpeechError as exc:
            log.info("voice.speech_error", reason=exc.reason)
            extra.update(speech_error=exc.reason, speech_message=str(exc))
        else:
            # the surname repair rewrites the text: revise() keeps the spans on the final text and
            # marks the repaired characters corrected (a repaired surname is a guess, shown as unsure)
            result = result.revise(repair_transcript(app, result.text))
            extra.update(
                transcript=result.text,
                transcript_unsure=unsure_rows(app, result),
                transcript_source="local",
                audio_seconds=round(result.audio_seconds, 2),
                stt_seconds=round(result.seconds, 2),
            )
    except MediaError as exc:
        log.warning("voice.media_error", reason=exc.reason)
        extra.update(speech_error="media", speech_message=exc.reason)
    except LookupError as exc:
        extra.update(speech_error="media", speech_message=str(exc))

    if "speech_error" in extra and platform_text:
        # ours failed but the platform heard something: better than asking the rep again
        extra.pop("speech_error")
        extra.pop("speech_message", None)
        extra.update(transcript=platform_text, transcript_source="platform")
    elif platform_text and "transcript" in extra:
        extra["platform_transcript"] = platform_text
    extra["voice_pipeline_seconds"] = round(time.perf_counter() - started, 3)
    return replace(msg, extra=extra)
