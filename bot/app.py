"""The composition root: the features this product has, in routing order, and the runtime built from them.

The only place that knows both the runtime and the features. Order is routing order:
the first matching handler that does not SKIP wins, so #tags and card buttons come
before commands, commands before pending answers, and the catch-all comes last.
"""

from __future__ import annotations

from bot.clock import Clock
from bot.config import Config
from bot.features import Feature
from bot.runtime import Runtime
from bot.web import WebRoutes


def features() -> list[Feature]:
    from handlers import (
        accounts,
        buttons,
        escalations,
        fallback,
        notes,
        playbook,
        reports,
        tasks,
    )

    return [
        playbook.feature,  # #tags first: talk tracks, #帮助; other features' tags are SKIPped
        buttons.feature,  # a click is redispatched as its typed command
        tasks.feature,  # 完成 / 推迟 / #待办
        accounts.feature,  # #客户
        escalations.feature,  # 跟进中/稍后提醒/改派/暂停 E12, #预警 #卡单 #逾期, #回款 … 已到账; stalled-deal and receivable ladders
        reports.feature,  # #团队 #漏斗 #健康 #审计 #看板, and questions (never filed as notes), weekly digest
        notes.feature,  # corrections, pending answers, then new notes
        fallback.feature,
    ]


def web_routes() -> list[WebRoutes]:
    """HTTP surfaces beyond channels, /healthz and /metrics: the read-only dashboard under /dash/."""
    from bot import dashboard

    return [dashboard.setup]


def build_runtime(config: Config, *, clock: Clock | None = None) -> Runtime:
    return Runtime(config, features(), clock=clock, web_routes=web_routes())
