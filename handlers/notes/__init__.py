"""Notes: a rep's typed or spoken follow-up becomes a stored note, a card and at most one question.

Routing order inside the feature matters: corrections ("阶段改成…", "撤销") first, then
"记录成备注"/"补充医院", confirmations and answers to a pending question, then new notes
(or follow-ups to the previous one).
"""

from __future__ import annotations

from bot.context import AppContext
from bot.features import Feature
from bot.router import Router
from handlers.common.waiting import prefetch_waiting
from handlers.notes import corrections, dialog, followup
from handlers.notes import handlers as chat
from handlers.notes.voice import transcribe_voice


def router(app: AppContext) -> Router:
    r = Router("notes")
    r.include(corrections.router(app))
    r.include(followup.router(app))
    r.include(dialog.router(app))
    r.include(chat.router(app))
    return r


feature = Feature("notes", router=router, preprocessors=(transcribe_voice,), prefetchers=(prefetch_waiting,))
