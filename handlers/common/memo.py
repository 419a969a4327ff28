"""Facts a message's handlers need more than once, read once per transaction.

Why: the features a message passes through ask the same questions (is the bot waiting for
this person? did this message already become a note? what did the extractor make of the
text?) and each question used to cost a round trip — on SQLite one that also holds the
single writer. Why per *transaction*: everything read inside it stays true until the
transaction itself changes it, and every writer of a memoised fact updates (or drops) it
in the same breath. A new transaction (a commit, a rollback, the retry of a failed
message) starts from an empty memo, so nothing outlives what it was read in, and nothing
here is shared between nodes or sessions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_KEY = "handlers.memo"


def memo(session: AsyncSession) -> dict[Any, Any]:
    """The memo of ``session``'s current outermost transaction (empty in a new one)."""
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_KEY)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[_KEY] = held
    return held[1]  # type: ignore[no-any-return]
