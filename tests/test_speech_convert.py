"""CTranslate2 ⇄ openai-whisper conversion and the openai-whisper loading path (tiny random model)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from nlp.speech.convert import ConversionError, ct2_to_openai, openai_to_ct2, read_ct2_model

torch = pytest.importorskip("torch")
whisper = pytest.importorskip("whisper")
pytest.importorskip("ctranslate2")

from nlp.speech import SpeechConfig, SpeechError, create_stt  # noqa: E402
from nlp.speech.testing import (  # noqa: E402
    TINY_DIMS,
    amr_nb,
    random_openai_state,
    tone,
    write_ct2_with_ctranslate2,
    write_openai_pt,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, np.ndarray], Path]:
    state = random_openai_state(TINY_DIMS, seed=3)
    ct2_dir = write_ct2_with_ctranslate2(state, TINY_DIMS, tmp_path_factory.mktemp("tiny-ct2"))
    return state, ct2_dir


def test_round_trip_is_exact(tiny) -> None:
    state, ct2_dir = tiny
    variables = read_ct2_model(ct2_dir / "model.bin")  # bytes written by ctranslate2's own serialiser
    dims, back = ct2_to_openai(variables)
    assert dims == TINY_DIMS
    assert set(back) == set(state)
    for name, value in state.items():
        assert back[name].dtype == value.dtype and np.array_equal(back[name], value), name
    again = openai_to_ct2(dims, back)
    assert all(np.array_equal(again[k], variables[k]) for k in again)


def test_nonzero_key_bias_is_refused(tiny) -> None:
    _, ct2_dir = tiny
    variables = dict(read_ct2_model(ct2_dir / "model.bin"))
    fused = variables["encoder/layer_0/self_attention/linear_0/bias"].copy()
    fused[TINY_DIMS.n_audio_state] = 1  # first element of the k slice
    variables["encoder/layer_0/self_attention/linear_0/bias"] = fused
    with pytest.raises(ConversionError):
        ct2_to_openai(variables)


def test_openai_loading_path_from_ct2_dir(tiny, tmp_path: Path) -> None:
    """The converted checkpoint loads in whisper.load_model (offline) with identical weights."""
    state, ct2_dir = tiny
    stt = create_stt(SpeechConfig(backend="openai-whisper", model=ct2_dir, cache_dir=tmp_path, concurrency=1))
    try:
        engine = stt.engine()
        model = engine._model  # noqa: SLF001 - checking the loaded weights is the point
        assert asdict(TINY_DIMS) == model.dims.__dict__
        loaded = model.state_dict()
        for name in ("encoder.blocks.1.attn.key.weight", "decoder.blocks.0.cross_attn.value.bias",
                     "decoder.token_embedding.weight"):
            assert torch.equal(loaded[name], torch.from_numpy(state[name]).float())
        assert (tmp_path / f"{ct2_dir.name}-openai.pt").is_file()
    finally:
        stt.close()


@pytest.mark.asyncio
async def test_openai_backend_transcribes_or_fails_cleanly(tiny, tmp_path: Path) -> None:
    """A random model outputs junk; the service must return a Transcript or a SpeechError."""
    state, _ = tiny
    pt = write_openai_pt(state, TINY_DIMS, tmp_path / "tiny.pt")
    stt = create_stt(SpeechConfig(backend="openai-whisper", model=pt, temperatures=(0.0,), concurrency=1))
    try:
        try:
            result = await stt.transcribe(amr_nb(tone(2.0)))
        except SpeechError as exc:
            assert exc.reason in {"empty", "echo", "corrupt"}
        else:
            assert result.backend == "openai-whisper" and result.audio_seconds == pytest.approx(2.0, abs=0.05)
    finally:
        stt.close()


def test_model_names_needing_a_download_are_refused() -> None:
    for backend in ("faster-whisper", "openai-whisper"):
        stt = create_stt(SpeechConfig(backend=backend, model="large-v3"))  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            stt.engine()
        stt.close()
