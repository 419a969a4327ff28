"""What the hand-written extraction case files share: a fixed Wednesday and a dict view of a note.

The ``ex`` fixture (one extractor over the packaged lexicon) lives in ``conftest.py``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from nlp.extract import Extractor

TZ = ZoneInfo("Asia/Shanghai")
WED = datetime(2026, 3, 18, 10, 0, tzinfo=TZ)  # a Wednesday


def run(ex: Extractor, text: str, now: datetime = WED) -> dict:  # type: ignore[type-arg]
    return ex.extract(text, now).to_dict()
