"""Decoding and refusal of voice memos — no model needed, fast."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from nlp.speech import SpeechConfig, SpeechError, create_stt  # noqa: E402
from nlp.speech.audio import (  # noqa: E402
    AMR_NB_FRAME_BYTES,
    SAMPLE_RATE,
    amr_nb_bad_frames,
    decode_audio,
    sniff,
    speech_level_dbfs,
)
from nlp.speech.testing import amr_nb, encode, tone  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "voice"
MEMOS = [json.loads(line) for line in (FIXTURES / "voice.jsonl").read_text(encoding="utf-8").splitlines()]
DTX_MEMOS = [m for m in MEMOS if m["dtx"]]


@pytest.fixture(scope="module")
def stt():
    """A service whose model is never loaded: these tests must fail before inference."""
    service = create_stt(SpeechConfig(max_seconds=10))
    yield service
    service.close()


@pytest.mark.parametrize("memo", DTX_MEMOS, ids=lambda m: m["id"])
def test_native_decoder_patches_dtx_frames_with_silence_keeping_timing(memo: dict) -> None:
    data = (FIXTURES / memo["file"]).read_bytes()
    native = decode_audio(data, max_seconds=120, prefer_opencore=False)
    assert native.failed_packets > 0  # the frames PyAV/FFmpeg's amrnb cannot decode ("dtx mode")
    assert native.seconds == pytest.approx(native.total_packets * 0.020, abs=0.01)
    assert native.seconds == pytest.approx(memo["seconds"], abs=0.05)
    assert native.samples.dtype == np.float32 and native.samples.ndim == 1


@pytest.mark.parametrize("memo", MEMOS, ids=lambda m: m["id"])
def test_default_decoder_handles_every_fixture(memo: dict) -> None:
    audio = decode_audio((FIXTURES / memo["file"]).read_bytes(), max_seconds=120)
    assert audio.source_format == "amr"
    assert audio.seconds == pytest.approx(memo["seconds"], abs=0.05)
    assert speech_level_dbfs(audio.samples) > -30


def test_synthetic_dtx_pause_keeps_duration() -> None:
    signal = np.concatenate([tone(1.0), np.zeros(8000, np.float32), tone(1.0)])
    data = amr_nb(signal, dtx=True)
    for prefer in (True, False):
        audio = decode_audio(data, max_seconds=120, prefer_opencore=prefer)
        assert audio.seconds == pytest.approx(3.0, abs=0.05)
        middle = audio.samples[int(1.2 * SAMPLE_RATE) : int(1.8 * SAMPLE_RATE)]
        assert np.sqrt(np.mean(middle**2)) < 0.01  # the pause stays quiet


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [("wav", "pcm_s16le", 16000), ("ogg", "libopus", 48000), ("mp3", "libmp3lame", 16000),
     ("adts", "aac", 16000), ("mp4", "aac", 16000), ("flac", "flac", 16000)],
)
def test_other_formats_are_sniffed_and_decoded(container: str, codec: str, rate: int) -> None:
    data = encode(tone(1.5, rate=rate), rate=rate, container=container, codec=codec)
    assert sniff(data[:16]) != "unknown"
    audio = decode_audio(data, max_seconds=120)
    assert audio.seconds == pytest.approx(1.5, abs=0.12)
    assert speech_level_dbfs(audio.samples) > -20


def _reason(stt, data) -> str:
    with pytest.raises(SpeechError) as info:
        stt.prepare(data)
    assert str(info.value)  # a Chinese message for the rep
    return info.value.reason


def test_corrupt_bytes(stt) -> None:
    rng = random.Random(7)
    assert _reason(stt, bytes(rng.getrandbits(8) for _ in range(4000))) == "corrupt"
    assert _reason(stt, b"RIFF\x10\x00\x00\x00WAVEfmt garbage") == "corrupt"
    # garbage behind an AMR magic: FFmpeg decodes it to seconds of noise, the frame headers say otherwise
    assert _reason(stt, b"#!AMR\n" + bytes(range(256)) * 3) == "corrupt"


def test_amr_frame_headers() -> None:
    memo = amr_nb(tone(2.0, amplitude=0.3), dtx=True)
    bad, total = amr_nb_bad_frames(memo)
    assert bad == 0 and total >= 100  # 20 ms frames
    # a few damaged frames (quality bit cleared) are tolerated, most are not
    frames = bytearray(memo)
    pos, damaged = 6, 0
    while pos < len(frames):
        if damaged < total // 10:
            frames[pos] &= ~0x04
            damaged += 1
        pos += 1 + AMR_NB_FRAME_BYTES[(frames[pos] >> 3) & 0x0F]
    assert amr_nb_bad_frames(bytes(frames)) == (damaged, total)
    assert decode_audio(bytes(frames), max_seconds=30).seconds > 1.5


def test_empty_inputs(stt, tmp_path: Path) -> None:
    assert _reason(stt, b"") == "empty"
    assert _reason(stt, b"#!AMR\n") == "empty"
    assert _reason(stt, amr_nb(tone(0.1))) == "empty"  # a mis-tap, not a memo
    assert _reason(stt, tmp_path / "missing.amr") == "empty"


def test_silent_memo(stt) -> None:
    assert _reason(stt, amr_nb(np.zeros(3 * 8000, np.float32), dtx=True)) == "silent"
    assert _reason(stt, amr_nb(np.zeros(3 * 8000, np.float32), dtx=False)) == "silent"
    hiss = np.random.default_rng(0).normal(0, 0.001, 3 * 8000).astype(np.float32)  # ≈ -60 dBFS
    assert _reason(stt, amr_nb(hiss, dtx=False)) == "silent"


def test_too_long_is_refused_while_decoding(stt) -> None:
    with pytest.raises(SpeechError) as info:
        stt.prepare(amr_nb(tone(12.0)))  # max_seconds=10 in this fixture
    assert info.value.reason == "too_long"
    assert "10" in str(info.value)


def test_unsupported_formats(stt) -> None:
    assert _reason(stt, b"#!SILK_V3" + bytes(200)) == "unsupported"  # WeChat's SILK voice
    assert _reason(stt, b"\x02#!SILK_V3" + bytes(200)) == "unsupported"
    assert _reason(stt, b"\x89PNG\r\n\x1a\n" + bytes(200)) == "unsupported"
    assert _reason(stt, b"%PDF-1.4\n" + bytes(200)) == "unsupported"


@pytest.mark.asyncio
async def test_async_refusals_never_load_the_model(stt) -> None:
    for data, reason in [(b"", "empty"), (b"#!SILK_V3" + bytes(10), "unsupported"),
                         (amr_nb(tone(12.0)), "too_long")]:
        with pytest.raises(SpeechError) as info:
            await stt.transcribe(data)
        assert info.value.reason == reason
    assert stt.load_seconds is None
