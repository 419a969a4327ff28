"""Issue 16: word probabilities as spans over the final text, pause splitting, context correction.

Most tests drive the service with a fake engine (deterministic, no model); the last one runs the
bundled whisper base on a fixture memo to check real probabilities arrive.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp.speech import SpeechConfig, Transcript, create_stt, uncertain_spans
from nlp.speech.backends import DecodeOptions, RawSegment
from nlp.speech.correct import ContextTerms, context_terms, correct_in_context
from nlp.speech.spans import Span, Tracked
from nlp.speech.split import piece_count, split_points

pytestmark = pytest.mark.slow  # imports the speech stack; the last test loads the real model

HOT = ["迈瑞", "联影", "美敦力", "注册证", "设备科", "主任"]
FIXTURES = Path(__file__).parent / "fixtures" / "voice"


class _WordEngine:
    """Fake whisper: returns fixed segments with per-word probabilities, records each call."""

    name = "fake"

    def __init__(self, segments: list[RawSegment]) -> None:
        self.segments = segments
        self.calls: list[tuple[int, DecodeOptions]] = []

    def transcribe(self, samples: np.ndarray, options: DecodeOptions) -> list[RawSegment]:
        self.calls.append((len(samples), options))
        return self.segments


def _words(*pairs: tuple[str, float]) -> RawSegment:
    return RawSegment("".join(w for w, _ in pairs), tuple(pairs))


def _memo(seconds: float = 2.0) -> bytes:
    from nlp.speech.testing import amr_nb, tone  # noqa: PLC0415

    return amr_nb(tone(seconds))


def _service(engine: object, **config: object):  # type: ignore[no-untyped-def]
    stt = create_stt(SpeechConfig(context_correction=False, **config))  # type: ignore[arg-type]
    stt._engine = engine  # noqa: SLF001
    return stt


def _check_spans(tr: Transcript) -> None:
    assert tr.spans, "no spans"
    assert tr.spans[0].start == 0 and tr.spans[-1].end == len(tr.text)
    for a, b in zip(tr.spans, tr.spans[1:]):
        assert a.end == b.start
    for span in tr.spans:
        assert tr.text[span.start : span.end] == span.text
        assert span.probability is None or 0.0 <= span.probability <= 1.0


def test_tracked_carries_probabilities_through_rewrites() -> None:
    tracked = Tracked.from_words([(" 客戶", 0.9), ("提到", 0.4), (" 連影", 0.2), ("。", 0.99)])
    assert tracked.text == " 客戶提到 連影。"
    moved = tracked.apply(lambda t: t.replace("戶", "户").replace("連", "连")).apply(lambda t: t.replace(" ", ""))
    assert moved.text == "客户提到连影。"
    spans = moved.spans()
    assert [(s.text, s.probability) for s in spans] == [("客户", 0.9), ("提到", 0.4), ("连影", 0.2), ("。", 0.99)]
    assert all(moved.text[s.start : s.end] == s.text for s in spans)


@pytest.mark.asyncio
async def test_spans_cover_the_corrected_text_and_corrections_are_unsure() -> None:
    pytest.importorskip("av")
    engine = _WordEngine([_words(("客戶", 0.95), ("提到", 0.9), ("連", 0.8), ("影", 0.85), ("的", 0.97),
                                 ("註冊", 0.3), ("證", 0.9), ("，", 0.99))])
    stt = _service(engine)
    try:
        tr = await stt.transcribe(_memo(), hotwords=HOT)
    finally:
        stt.close()
    assert tr.text == "客户提到联影的注册证，"  # simplified, then 连影 → 联影 by term correction
    _check_spans(tr)
    by_text = {s.text: s for s in tr.spans}
    assert by_text["联影"].corrected and by_text["联影"].probability == 0.8  # one span, weaker word
    assert not by_text["客户"].corrected and by_text["客户"].probability == 0.95
    unsure = uncertain_spans(tr, 0.5)
    assert [s.text for s in unsure] == ["联影", "注册"]  # corrected, and p=0.3; never the comma
    assert [s.text for s in uncertain_spans(tr, 0.2)] == ["联影"]  # a correction is unsure at any threshold
    assert all(isinstance(s, Span) for s in unsure)


@pytest.mark.asyncio
async def test_echo_segments_are_dropped_with_their_spans() -> None:
    pytest.importorskip("av")
    engine = _WordEngine([_words(("设备科", 0.9), ("说", 0.9), ("中标", 0.6), ("了", 0.9)),
                          _words(("迈瑞", 0.5), ("、", 0.9), ("联影", 0.5), ("、", 0.9), ("美敦力", 0.5))])
    stt = _service(engine)
    try:
        tr = await stt.transcribe(_memo(), hotwords=HOT)
    finally:
        stt.close()
    assert tr.text == "设备科说中标了"
    _check_spans(tr)
    assert uncertain_spans(tr, 0.7) == [Span(4, 6, "中标", 0.6, False)]


@pytest.mark.asyncio
async def test_no_word_probabilities_means_no_spans() -> None:
    pytest.importorskip("av")
    stt = _service(_WordEngine([RawSegment("设备科说中标了")]), word_probabilities=False)
    try:
        tr = await stt.transcribe(_memo(), hotwords=HOT)
    finally:
        stt.close()
    assert tr.text == "设备科说中标了" and tr.spans == () and uncertain_spans(tr) == []


def test_revise_marks_later_repairs_as_corrected() -> None:
    tracked = Tracked.from_words([("心内科", 0.9), ("留", 0.6), ("主任", 0.95)])
    tr = Transcript("心内科留主任", 3.0, 1.0, "fake", spans=tracked.spans())
    revised = tr.revise("心内科刘主任")
    assert revised.text == "心内科刘主任"
    assert [(s.text, s.corrected) for s in uncertain_spans(revised, 0.5)] == [("刘", True)]
    assert tr.revise(tr.text) is tr


def test_split_points_fall_in_pauses() -> None:
    rate = 16_000
    rng = np.random.default_rng(0)
    speech = lambda s: (0.3 * rng.standard_normal(int(s * rate))).astype(np.float32)  # noqa: E731
    pause = lambda s: (0.001 * rng.standard_normal(int(s * rate))).astype(np.float32)  # noqa: E731
    samples = np.concatenate([speech(5.0), pause(0.6), speech(4.0), pause(0.5), speech(6.0)])
    (cut,) = split_points(samples, 2)
    assert 9.6 * rate < cut < 10.1 * rate  # inside the second pause, the one nearest the middle
    assert split_points(samples[: 4 * rate], 2) == []  # too short to cut
    assert piece_count(8.0, min_split_seconds=10.0, workers=2) == 1
    assert piece_count(21.0, min_split_seconds=10.0, workers=2) == 2
    assert piece_count(21.0, min_split_seconds=10.0, workers=1) == 1
    assert piece_count(70.0, min_split_seconds=10.0, workers=2) == 3  # pieces stay inside 30 s windows


@pytest.mark.asyncio
async def test_long_memo_is_decoded_in_pieces_and_joined_in_order() -> None:
    pytest.importorskip("av")
    from nlp.speech.testing import amr_nb, tone  # noqa: PLC0415

    audio = np.concatenate([tone(6.0, rate=8000), np.zeros(4000, np.float32), tone(6.0, rate=8000, freq=300)])
    engine = _WordEngine([_words(("设备科", 0.9), ("说", 0.8), ("。", 0.9))])
    stt = _service(engine, split_min_seconds=10.0, parallel_pieces=2)
    try:
        tr = await stt.transcribe(amr_nb(audio), hotwords=HOT)
    finally:
        stt.close()
    assert tr.pieces == 2 and len(engine.calls) == 2
    assert {options.beam_size for _, options in engine.calls} == {5}  # 12.5 s: not a long memo
    assert sum(n for n, _ in engine.calls) == pytest.approx(12.5 * 16_000, abs=800)
    assert tr.text == "设备科说。设备科说。"
    _check_spans(tr)
    assert len(tr.spans) == 6 and tr.spans[3].start == 5  # second piece's words, not the first's again


def test_context_correction_uses_the_whole_lexicon_with_context() -> None:
    from nlp.lexicon import load_lexicon  # noqa: PLC0415

    lexicon = load_lexicon()
    ctx = context_terms(lexicon)
    hot = lexicon.hotwords()
    # a brand heard as a homophone sharing no character: only near a price/competitor cue
    assert correct_in_context("他们嫌我们贵，说连营的报价低不少", hot, ctx)[0] == "他们嫌我们贵，说联影的报价低不少"
    assert correct_in_context("古代连营八百里", hot, ctx)[0] == "古代连营八百里"
    # a hospital name (not among the hotwords) and a surname before a title, with the edits listed
    text, edits = correct_in_context("今天去华三医院见了留主任", hot, ctx)
    assert text == "今天去华山医院见了刘主任"
    assert edits == [(3, 7, "华三医院"), (9, 10, "留")]
    assert correct_in_context("是主任医师说的", hot, ctx)[0] == "是主任医师说的"  # not a surname slot
    # without context terms: plain pinyin correction over the given terms only
    assert correct_in_context("今天去华三医院见了留主任", hot, None)[0] == "今天去华三医院见了留主任"
    assert correct_in_context("连营的报价", hot, ContextTerms())[0] == "连营的报价"


@pytest.mark.asyncio
async def test_real_model_gives_word_probabilities(model_cache: Path) -> None:
    pytest.importorskip("av")
    memo = json.loads((FIXTURES / "voice.jsonl").read_text(encoding="utf-8").splitlines()[0])
    stt = create_stt(SpeechConfig(beam_size=1, cache_dir=model_cache))
    try:
        tr = await stt.transcribe(FIXTURES / memo["file"], hotwords=HOT)
    finally:
        stt.close()
    _check_spans(tr)
    assert all(s.probability is not None for s in tr.spans if not s.corrected)
    assert sum(s.probability or 0 for s in tr.spans) / len(tr.spans) > 0.5  # a clear memo is mostly sure


def test_decoder_loops_and_prompt_leaks_are_repaired() -> None:
    from nlp.speech.text import DEFAULT_PROMPT, collapse_loops, strip_prompt_leak  # noqa: PLC0415

    assert collapse_loops("转型的椰子温温温温温温温温温温温温") == "转型的椰子温"
    assert collapse_loops("的话的话的话的话的话") == "的话"
    assert collapse_loops("对对对对对，哈哈哈哈哈哈") == "对对对对对，哈哈哈哈哈哈"  # speech repeats less
    assert strip_prompt_leak("我说下周再去请使用简体中文和", DEFAULT_PROMPT) == "我说下周再去"
    assert strip_prompt_leak("我们卖医疗器械的", DEFAULT_PROMPT) == "我们卖医疗器械的"  # short overlap kept


@pytest.mark.asyncio
async def test_loop_repair_keeps_spans_aligned() -> None:
    pytest.importorskip("av")
    engine = _WordEngine([_words(("科主任", 0.9), ("说", 0.9), *[("好", 0.3)] * 12, ("。", 0.9))])
    stt = _service(engine)
    try:
        tr = await stt.transcribe(_memo(), hotwords=HOT)
    finally:
        stt.close()
    assert tr.text == "科主任说好。"
    _check_spans(tr)
    assert [s.text for s in uncertain_spans(tr, 0.5)] == ["好"]


@pytest.mark.asyncio
async def test_long_memos_get_the_smaller_beam() -> None:
    pytest.importorskip("av")
    engine = _WordEngine([_words(("设备科", 0.9))])
    stt = _service(engine, long_memo_seconds=15.0, long_beam_size=3, beam_size=5)
    try:
        await stt.transcribe(_memo(16.0), hotwords=HOT)
        await stt.transcribe(_memo(4.0), hotwords=HOT)
    finally:
        stt.close()
    assert [options.beam_size for _, options in engine.calls] == [3, 3, 5]  # two pieces, then a short memo
