"""What the bot does. Each feature module exposes ``router(app) -> Router``.

Order matters: the first matching handler that does not SKIP wins, so specific
features (commands, card buttons, pending questions) come before the catch-all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.router import Router
from handlers import actions, fallback, playbook
from handlers import accounts, dialog, notes, notes_corrections, tasks

if TYPE_CHECKING:
    from bot.context import AppContext
    from bot.dispatcher import Preprocessor
    from bot.runtime import Background


def build_router(app: AppContext) -> Router:
    root = Router("root")
    root.include(playbook.router(app))  # #tags first: talk tracks, #帮助; other features' tags are SKIPped
    root.include(actions.router(app))
    root.include(tasks.router(app))  # notes: commands first, then pending answers, then notes
    root.include(notes_corrections.router(app))
    root.include(accounts.router(app))
    root.include(dialog.router(app))
    root.include(notes.router(app))
    root.include(fallback.router(app))
    return root


def build_preprocessors(app: AppContext) -> list[Preprocessor]:
    """Slow, database-free preparation run before a message's transaction."""
    from handlers.voice import transcribe_voice

    return [transcribe_voice]


def build_background(app: AppContext) -> list[Background]:
    from reminders.scheduler import ReminderScheduler

    return [playbook.background(app), ReminderScheduler(app)]
