"""The hook the notes feature calls: a note landed on a deal (counting activity), or a deal field was corrected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.escalations.payments import propose_from_note
from handlers.escalations.service import local_day_start, waiting_until, watch_deal
from storage.audit import audit
from storage.models import Note, Opportunity

if TYPE_CHECKING:
    from bot.context import AppContext


@dataclass(frozen=True)
class DealHooks:
    app: AppContext

    async def activity(self, session: AsyncSession, opp: Opportunity, note: Note, now: datetime) -> None:
        """A new note about the deal: restart its stalled clock, pause it for a dated external event, propose payment terms."""
        app = self.app
        timer = await watch_deal(app, session, opp, now=now, activity=True, actor_id=note.author_id)
        until = waiting_until(app, note.raw_text or note.transcript or "", now)
        if timer is not None and until is not None:
            await app.timers.pause(session, timer, at=now, until=local_day_start(app, until))
            await audit(session, actor_id=note.author_id, entity="opportunity", entity_id=opp.id, field_name="escalation_pause",
                        old=None, new=until, note_id=note.id, now=now)
        await propose_from_note(app, session, opp, note, now=now)

    async def changed(self, session: AsyncSession, opp: Opportunity, now: datetime, actor_id: int | None = None) -> None:
        """A correction or an answer changed the deal (amount, stage, status): refresh, never restart."""
        await watch_deal(self.app, session, opp, now=now, activity=False, actor_id=actor_id)


def deal_hooks(app: AppContext) -> DealHooks:
    return DealHooks(app)
