"""Text post-processing: simplified script, echo/hallucination guards, lexicon-term correction."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.speech import SpeechConfig, SpeechError, create_stt, correct_terms
from nlp.speech.backends import DecodeOptions
from nlp.speech.errors import MESSAGES
from nlp.speech.text import DEFAULT_PROMPT, is_echo, is_hallucination, to_simplified

HOT = ["迈瑞", "联影", "美敦力", "注册证", "授权书", "骨科", "试用", "梁主任", "设备科", "采购办"]


def test_traditional_is_converted_and_simplified_untouched() -> None:
    assert to_simplified("李院長對報價有異議，下週三前把參數對比表發給他") == "李院长对报价有异议，下周三前把参数对比表发给他"
    simplified = "瑞金医院的合同已经盖章了，总金额一百二十万，下周安排装机。"
    assert to_simplified(simplified) == simplified


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客户提到迈瑞和连影都来过了", "客户提到迈瑞和联影都来过了"),
        ("三天内把新的注测证和售权书发给他", "三天内把新的注册证和授权书发给他"),
        ("省人民医院古科的单子丢了", "省人民医院骨科的单子丢了"),
        ("明天约两主任吃饭", "明天约梁主任吃饭"),
    ],
)
def test_correct_terms_fixes_near_homophones(text: str, expected: str) -> None:
    assert correct_terms(text, HOT) == expected


@pytest.mark.parametrize(
    "text",
    ["大家使用得挺顺手", "联影和迈瑞都来过", "今天天气真不错", "我们到过设备科了"],
)
def test_correct_terms_leaves_real_words_alone(text: str) -> None:
    assert correct_terms(text, HOT) == text


def test_correct_terms_without_terms_is_identity() -> None:
    assert correct_terms("注测证", []) == "注测证"


def test_echo_detection() -> None:
    assert is_echo("迈瑞、联影、美敦力、注册证", DEFAULT_PROMPT, HOT)
    assert is_echo("迈瑞联影美敦力注册证授权书", DEFAULT_PROMPT, HOT)
    assert is_echo("以下是普通话的医疗器械销售跟进语音记录", DEFAULT_PROMPT, HOT)
    assert not is_echo("客户提到迈瑞和联影都来过了，我们的优势是售后响应快", DEFAULT_PROMPT, HOT)
    assert not is_echo("设备科说注册证过期了", DEFAULT_PROMPT, HOT)
    assert is_hallucination("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目")
    assert not is_hallucination("采购办通知我们中标了")


class _FakeEngine:
    """Stands in for whisper to drive the service's post-processing deterministically."""

    name = "fake"

    def __init__(self, segments: list[str]) -> None:
        self.segments = segments
        self.calls: list[DecodeOptions] = []

    def transcribe(self, samples: np.ndarray, options: DecodeOptions) -> list[str]:
        self.calls.append(options)
        return self.segments


def _speech() -> bytes:
    from nlp.speech.testing import amr_nb, tone  # noqa: PLC0415

    return amr_nb(tone(2.0))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("segments", "reason"),
    [(["迈瑞、联影、美敦力、注册证、授权书"], "echo"), ([" 以下是普通话的医疗器械销售跟进语音记录。"], "echo"),
     ([""], "empty"), (["字幕由Amara.org社区提供"], "empty")],
)
async def test_service_rejects_echo_and_empty_output(segments: list[str], reason: str) -> None:
    pytest.importorskip("av")
    stt = create_stt(SpeechConfig())
    stt._engine = _FakeEngine(segments)  # noqa: SLF001
    try:
        with pytest.raises(SpeechError) as info:
            await stt.transcribe(_speech(), hotwords=HOT)
        assert info.value.reason == reason and str(info.value) in {m.format(max_seconds=120) for m in MESSAGES.values()}
    finally:
        stt.close()


@pytest.mark.asyncio
async def test_service_postprocesses_segments() -> None:
    pytest.importorskip("av")
    stt = create_stt(SpeechConfig(correct_terms=True))
    engine = _FakeEngine(["客戶提到邁瑞和連影都來過了，", " 迈瑞、联影、美敦力、注册证、授权书"])
    stt._engine = engine  # noqa: SLF001
    try:
        result = await stt.transcribe(_speech(), hotwords=HOT + ["迈瑞", " "])
    finally:
        stt.close()
    assert result.text == "客户提到迈瑞和联影都来过了，"  # t2s, correction, echoed segment dropped
    assert result.backend == "fake" and result.audio_seconds == pytest.approx(2.0, abs=0.05)
    assert engine.calls[0].hotwords == tuple(HOT)  # deduplicated, blanks dropped, within budget
    assert engine.calls[0].language == "zh" and engine.calls[0].initial_prompt == DEFAULT_PROMPT


def test_prompt_hotwords_respect_the_budget() -> None:
    from nlp.speech.text import MAX_PROMPT_HOTWORD_CHARS, hotword_char_budget, prompt_hotwords  # noqa: PLC0415

    words = [f"词语{i:03d}" for i in range(100)]
    kept = prompt_hotwords(words)
    assert kept == tuple(words[: len(kept)]) and 0 < len(kept) < 100
    assert len("、".join(kept)) <= MAX_PROMPT_HOTWORD_CHARS
    short, long = hotword_char_budget(8.0), hotword_char_budget(110.0)
    assert short == MAX_PROMPT_HOTWORD_CHARS and 80 <= long < short  # long memos keep output room
    assert len("、".join(prompt_hotwords(words, long))) <= long


def test_misheard_surnames_before_titles_are_repaired() -> None:
    from nlp.lexicon import load_lexicon
    from nlp.speech import correct_surnames

    people = load_lexicon().people

    def fix(text: str) -> str:
        return correct_surnames(text, people.ranked_surnames, people.titles)

    assert fix("心内科留主任刚加上微信") == "心内科刘主任刚加上微信"
    assert fix("新来的五主任还不熟悉") == "新来的吴主任还不熟悉"
    assert fix("麻醉科皇护士长说") == "麻醉科黄护士长说"
    # right as heard, function words, and sounds no common surname has are left alone
    for text in ("王主任说下个月招标", "他是主任医师", "副主任说院里", "教主任说", "这个科长"):
        assert fix(text) == text
