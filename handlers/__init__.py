"""What the bot does. Each feature module exposes ``router(app) -> Router``.

Order matters: the first matching handler that does not SKIP wins, so specific
features (commands, card buttons, pending questions) come before the catch-all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.router import Router
from handlers import fallback

if TYPE_CHECKING:
    from bot.context import AppContext
    from bot.runtime import Background


def build_router(app: AppContext) -> Router:
    root = Router("root")
    root.include(fallback.router(app))
    return root


def build_background(app: AppContext) -> list[Background]:
    return []
