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
from dataclasses import replace
from typing import Any

from bot.context import AppContext
from bot.messages import Inbound, Kind, MediaError


def repair_transcript(app: AppContext, text: str) -> str:
    """Domain repairs our own transcripts need: misheard surnames before titles (留主任 → 刘主任)."""
    from nlp.speech import correct_surnames

    people = app.services.lexicon.people
    return correct_surnames(text, people.ranked_surnames, people.titles)


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
            result = await app.services.stt.transcribe(audio, hotwords=app.services.lexicon.hotwords())
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
