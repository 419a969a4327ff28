"""Speech errors: one exception type with a machine reason and a message the rep can read.

Callers (the bot handlers) only ever need to catch :class:`SpeechError`; the ``reason`` lets them
count failures by kind and the ``str()`` is ready to be sent back to the rep in Chinese.
"""

from __future__ import annotations

from typing import Final, Literal

Reason = Literal["corrupt", "empty", "silent", "unsupported", "too_long", "echo"]

MESSAGES: Final[dict[str, str]] = {
    "corrupt": "语音文件损坏，无法识别，请重发或改用文字",
    "empty": "没有收到语音内容，请重发或改用文字",
    "silent": "语音里没听到说话声，请靠近话筒重录或改用文字",
    "unsupported": "暂不支持这种语音格式，请用企业微信/钉钉直接录音，或改用文字",
    "too_long": "语音太长了，请控制在 {max_seconds:.0f} 秒以内，或分几段发送",
    "echo": "语音没听清，请重发或改用文字",
}


class SpeechError(Exception):
    """Transcription failed for a reason the rep can act on.

    ``reason`` is one of :data:`Reason`; ``detail`` is for logs (English, technical) and is never
    shown to the rep.
    """

    def __init__(self, reason: Reason, message: str | None = None, *, detail: str = "") -> None:
        self.reason: Reason = reason
        self.detail = detail
        super().__init__(message or MESSAGES[reason].format(max_seconds=120))

    @classmethod
    def too_long(cls, seconds: float, max_seconds: float) -> "SpeechError":
        """Build the too_long error with the configured limit in the rep-facing message."""
        return cls(
            "too_long",
            MESSAGES["too_long"].format(max_seconds=max_seconds),
            detail=f"audio lasts more than {seconds:.1f}s > max {max_seconds:.0f}s",
        )

    def __repr__(self) -> str:
        return f"SpeechError({self.reason!r}, detail={self.detail!r})"
