"""Helpers for tests and benchmarks: synthetic audio in any container, tiny whisper checkpoints.

Lives in the package (not in tests/) so every speech test module and the bench share one
implementation without a conftest. Nothing here is used at run time.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nlp.speech.convert import Dims, openai_to_ct2

TINY_DIMS = Dims(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=2,
                 n_vocab=51865, n_text_ctx=64, n_text_state=32, n_text_head=2, n_text_layer=2)


def tone(seconds: float, *, rate: int = 8000, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(samples: np.ndarray, *, rate: int, container: str, codec: str,
           options: dict[str, str] | None = None) -> bytes:
    """Encode mono float samples with PyAV (``container`` e.g. "amr", "wav", "ogg", "mp3")."""
    import av  # noqa: PLC0415

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.layout = "mono"
        fmt = stream.codec_context.format.name if stream.codec_context.format else "s16"
        pcm = np.clip(samples, -1, 1)
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, len(pcm), frame_size):
            chunk = pcm[start : start + frame_size]
            if fmt.startswith("s16"):
                data = (chunk * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                data = (chunk * 2147483000).astype(np.int32)
            else:
                data = chunk.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def amr_nb(samples: np.ndarray, *, dtx: bool = True) -> bytes:
    """8 kHz AMR-NB (12.2 kbit/s) as WeCom sends it; ``dtx`` makes silence into SID/NO_DATA frames."""
    return encode(samples, rate=8000, container="amr", codec="libopencore_amrnb",
                  options={"dtx": "1" if dtx else "0", "b": "12200"})


def random_openai_state(dims: Dims = TINY_DIMS, seed: int = 0) -> dict[str, np.ndarray]:
    """A randomly initialised openai-whisper state dict (float16, like the released checkpoints).

    k biases do not exist in whisper, which is what makes the CTranslate2 round trip exact.
    """
    import torch  # noqa: PLC0415
    from whisper.model import ModelDimensions, Whisper  # noqa: PLC0415

    torch.manual_seed(seed)
    model = Whisper(ModelDimensions(**asdict(dims)))
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.05)
    return {k: v.detach().cpu().numpy().astype(np.float16) for k, v in model.state_dict().items()}


def write_openai_pt(state: dict[str, np.ndarray], dims: Dims, path: Path) -> Path:
    import torch  # noqa: PLC0415

    torch.save({"dims": asdict(dims), "model_state_dict": {k: torch.from_numpy(v) for k, v in state.items()}}, path)
    return path


def write_ct2_with_ctranslate2(state: dict[str, np.ndarray], dims: Dims, out_dir: Path) -> Path:
    """Serialise ``state`` as a CTranslate2 whisper model using CTranslate2's own spec classes.

    The layout (fusions, zero k bias) is ``openai_to_ct2``'s; the bytes are written by
    ``ctranslate2.specs`` so the reader is tested against the real format.
    """
    from ctranslate2.specs import whisper_spec  # noqa: PLC0415

    spec = whisper_spec.WhisperSpec(dims.n_audio_layer, dims.n_audio_head, dims.n_text_layer, dims.n_text_head)
    variables = openai_to_ct2(dims, state)
    for name, value in variables.items():
        if name.endswith("num_heads") or name == "decoder/projection/weight":
            continue
        node: object = spec
        *path, leaf = name.split("/")
        for part in path:
            base, _, index = part.rpartition("_")
            if index.isdigit() and isinstance(getattr(node, base, None), list):
                node = getattr(node, base)[int(index)]  # "layer_3" / "linear_0": list members
            else:
                node = getattr(node, part)
        setattr(node, leaf, value)
    spec.decoder.projection.weight = spec.decoder.embeddings.weight
    spec.register_vocabulary([f"tok{i}" for i in range(dims.n_vocab)])
    spec.validate()
    spec.optimize(quantization=None)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
    return out_dir
