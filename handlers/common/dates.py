"""Time as a rep means it: the local calendar day, and dates typed as answers ("周四", "推迟两天")."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.context import AppContext


def local_now(app: AppContext, now: datetime) -> datetime:
    """The extractor and date parser resolve "明天" against the local calendar day."""
    return now.astimezone(app.config.tz)


def parse_answer_date(app: AppContext, raw: str, now: datetime, base: date | None = None) -> Any:
    """A standalone date answer ("周四", "不对，是下周四", "推迟两天") as an ``nlp.dates.DueDate``."""
    from nlp.dates import parse_date_answer

    return parse_date_answer(raw, local_now(app, now), base=base, holidays=app.services.lexicon.holidays)
