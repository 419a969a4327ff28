"""Decode rep voice memos to 16 kHz mono float32, robustly.

Why not let faster-whisper decode: its PyAV path aborts on AMR-NB files containing DTX/SID
(comfort-noise) frames ("dtx mode is not implemented"), and phones emit those whenever the rep
pauses. Here every packet is decoded on its own; a packet that fails is replaced by silence of the
same duration so timing is kept (AMR-NB frames are 20 ms = 160 samples at 8 kHz). When FFmpeg was
built with libopencore-amrnb (the PyAV wheels are) that decoder is preferred for AMR-NB because it
implements DTX and produces comfort noise instead of failing.

All failures surface as :class:`SpeechError` with a reason; nothing else escapes ``decode_audio``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from nlp.speech.errors import SpeechError

SAMPLE_RATE: Final = 16_000
_FRAME = SAMPLE_RATE // 50  # 20 ms analysis frames for the energy check
_MIN_SECONDS: Final = 0.3  # shorter than this is not a memo, it's a mis-tap
_GAP_TOLERANCE: Final = SAMPLE_RATE // 100  # pad only gaps longer than 10 ms (resampler delay is ~1 ms)

# Formats we recognise by magic bytes. Audio ones go to FFmpeg; the rest are refused up front.
_UNSUPPORTED_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"#!SILK_V3", "silk"),
    (b"\x02#!SILK_V3", "silk"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF8", "gif"),
    (b"%PDF", "pdf"),
    (b"PK\x03\x04", "zip"),
)
_AUDIO_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"#!AMR-WB\n", "amr-wb"),
    (b"#!AMR\n", "amr"),
    (b"RIFF", "wav"),
    (b"OggS", "ogg"),
    (b"ID3", "mp3"),
    (b"fLaC", "flac"),
    (b"\x1a\x45\xdf\xa3", "webm"),
    (b"FORM", "aiff"),
    (b"caff", "caf"),
)


# AMR-NB storage format (RFC 4867 §5): after "#!AMR\n" each frame starts with a header byte
# 0 FT(4) Q 0 0 and carries AMR_NB_FRAME_BYTES[FT] bytes; FT 9–14 are reserved, 15 is NO_DATA.
AMR_NB_FRAME_BYTES: Final = (12, 13, 15, 17, 19, 20, 26, 31, 5, 0, 0, 0, 0, 0, 0, 0)
_MAX_BAD_AMR_FRAMES: Final = 0.5


def amr_nb_bad_frames(data: bytes) -> tuple[int, int]:
    """(invalid, total) frame headers of an AMR-NB file.

    FFmpeg decodes garbage behind an AMR magic without complaint into seconds of noise, which the
    recogniser then "hears" as a word or two. A phone's memo has valid headers throughout
    (padding bits zero, a defined frame type, quality bit set), so a file where most are invalid
    is corrupt, whatever FFmpeg makes of it.
    """
    pos, total, bad = len(b"#!AMR\n"), 0, 0
    while pos < len(data):
        header = data[pos]
        frame_type = (header >> 3) & 0x0F
        total += 1
        if header & 0x83 or 9 <= frame_type <= 14 or not header & 0x04:
            bad += 1
        pos += 1 + AMR_NB_FRAME_BYTES[frame_type]
    return bad, total


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples at :data:`SAMPLE_RATE` plus what we learnt while decoding."""

    samples: np.ndarray
    source_format: str
    failed_packets: int = 0
    total_packets: int = 0

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def sniff(head: bytes) -> str:
    """Name the container from its first bytes: an audio kind, an unsupported kind, or "unknown".

    DingTalk may hand us formats other than WeCom's AMR, and file names/MIME types from chat
    platforms are unreliable, so the bytes decide.
    """
    for magic, kind in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            return kind
    for magic, kind in _AUDIO_MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return "aac"  # ADTS
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mp3"
    return "unknown"


def is_unsupported_kind(kind: str) -> bool:
    return kind in {k for _, k in _UNSUPPORTED_MAGIC}


def read_audio_bytes(audio: bytes | bytearray | memoryview | Path | str) -> bytes:
    """Accept bytes or a path; an unreadable path is reported as "empty" (nothing arrived)."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return bytes(audio)
    try:
        return Path(audio).read_bytes()
    except OSError as exc:
        raise SpeechError("empty", detail=f"cannot read {audio}: {exc}") from exc


def decode_audio(data: bytes, *, max_seconds: float, prefer_opencore: bool = True) -> DecodedAudio:
    """Decode ``data`` to 16 kHz mono float32; refuse memos longer than ``max_seconds``.

    Decoding stops as soon as ``max_seconds`` is exceeded, so a one-hour upload costs no more
    than a two-minute one. ``prefer_opencore=False`` forces FFmpeg's native AMR decoder (and so
    the silence patching of DTX frames); tests use it to exercise that path.
    """
    if not data:
        raise SpeechError("empty", detail="no bytes")
    kind = sniff(data[:16])
    if is_unsupported_kind(kind):
        raise SpeechError("unsupported", detail=f"{kind} is not decodable here")
    if kind == "amr":
        bad, frames = amr_nb_bad_frames(data)
        if frames and bad > frames * _MAX_BAD_AMR_FRAMES:
            raise SpeechError("corrupt", detail=f"amr: {bad} of {frames} frame headers invalid")
    try:
        import av  # noqa: PLC0415 - heavy import kept off the module import path
    except ImportError as exc:  # pragma: no cover - av comes with faster-whisper
        raise SpeechError("unsupported", detail="PyAV is not installed") from exc
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except Exception as exc:  # noqa: BLE001 - FFmpeg raises many error types
        raise SpeechError("corrupt", detail=f"{kind}: cannot open: {exc}") from exc
    try:
        if not container.streams.audio:
            raise SpeechError("unsupported", detail=f"{kind}: no audio stream")
        return _decode_stream(av, container, kind, max_seconds, prefer_opencore)
    except SpeechError:
        raise
    except Exception as exc:  # noqa: BLE001 - demuxer errors on truncated/garbled files
        raise SpeechError("corrupt", detail=f"{kind}: {type(exc).__name__}: {exc}") from exc
    finally:
        container.close()


def _amr_decoder(av: object, stream: object, prefer_opencore: bool) -> object:
    """Prefer libopencore-amrnb for AMR-NB: unlike FFmpeg's native decoder it handles DTX."""
    if not prefer_opencore or stream.codec_context.name != "amrnb":  # type: ignore[attr-defined]
        return stream.codec_context  # type: ignore[attr-defined]
    try:
        ctx = av.CodecContext.create("libopencore_amrnb", "r")  # type: ignore[attr-defined]
        ctx.sample_rate = stream.codec_context.sample_rate or 8000  # type: ignore[attr-defined]
        ctx.layout = "mono"
        ctx.open()
        return ctx
    except Exception:  # noqa: BLE001 - FFmpeg built without it: native decoder + silence patching
        return stream.codec_context  # type: ignore[attr-defined]


def _decode_stream(
    av: object, container: object, kind: str, max_seconds: float, prefer_opencore: bool
) -> DecodedAudio:
    stream = container.streams.audio[0]  # type: ignore[attr-defined]
    decoder = _amr_decoder(av, stream, prefer_opencore)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)  # type: ignore[attr-defined]
    time_base = stream.time_base
    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    length = failed = total = ok = 0
    next_start = 0  # where (in output samples) the following packet should begin

    def add(array: np.ndarray) -> None:
        nonlocal length
        chunks.append(array)
        length += len(array)
        if length > limit:
            raise SpeechError.too_long(length / SAMPLE_RATE, max_seconds)

    def pad_to(position: int) -> None:
        if position - length > _GAP_TOLERANCE:
            add(np.zeros(position - length, dtype=np.float32))

    def frames_out(frames: list[object]) -> None:
        for frame in frames:
            for out in resampler.resample(frame):
                add(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))

    for packet in container.demux(stream):  # type: ignore[attr-defined]
        if packet.size == 0:
            continue  # demuxer flush packet
        total += 1
        start = _to_samples(packet.pts, time_base)
        duration = _to_samples(packet.duration, time_base)
        if duration is None and kind == "amr":
            duration = SAMPLE_RATE // 50  # AMR-NB frame: 20 ms
        if start is not None:
            pad_to(start)
        try:
            frames = decoder.decode(packet)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - e.g. "dtx mode is not implemented"
            failed += 1
            if start is not None and duration:
                next_start = start + duration
            elif duration:
                next_start = length + duration
            pad_to(next_start)
            continue
        ok += 1
        frames_out(frames)
        if start is not None and duration:
            next_start = start + duration
    try:
        frames_out(decoder.decode(None))  # type: ignore[attr-defined]
    except SpeechError:
        raise
    except Exception:  # noqa: BLE001 - flushing a decoder that saw only bad packets
        pass
    frames_out([None])  # flush the resampler
    pad_to(next_start)
    if total == 0 or length == 0 and ok == 0 and failed == 0:
        raise SpeechError("empty", detail=f"{kind}: no audio packets")
    if ok == 0:
        raise SpeechError("corrupt", detail=f"{kind}: none of {total} packets decoded")
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if len(samples) < _MIN_SECONDS * SAMPLE_RATE:
        raise SpeechError("empty", detail=f"{kind}: only {len(samples) / SAMPLE_RATE:.2f}s of audio")
    return DecodedAudio(samples, kind, failed_packets=failed, total_packets=total)


def _to_samples(value: int | None, time_base: object) -> int | None:
    if value is None or time_base is None:
        return None
    return int(round(float(value * time_base) * SAMPLE_RATE))


def speech_level_dbfs(samples: np.ndarray) -> float:
    """Loudness of the speech part: the 90th percentile of 20 ms frame RMS, in dBFS.

    A percentile (not the mean) so that a memo with long pauses but clear speech still counts as
    speech, and a single click in an otherwise silent recording does not.
    """
    usable = len(samples) - len(samples) % _FRAME
    if usable <= 0:
        return -120.0
    frames = samples[:usable].astype(np.float64).reshape(-1, _FRAME)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    level = float(np.percentile(rms, 90))
    return 20.0 * np.log10(max(level, 1e-6))


def check_not_silent(audio: DecodedAudio, threshold_dbfs: float) -> None:
    """Refuse near-silent audio: whisper hallucinates subtitles credits on silence."""
    level = speech_level_dbfs(audio.samples)
    if level < threshold_dbfs:
        raise SpeechError("silent", detail=f"speech level {level:.1f} dBFS < {threshold_dbfs} dBFS")
