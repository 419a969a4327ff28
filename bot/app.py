"""The composition root: the features this product has, in routing order, and the runtime built from them.

The only place that knows both the runtime and the features. Order is routing order:
the first matching handler that does not SKIP wins, so #tags and card buttons come
before commands, commands before pending answers, and the catch-all comes last.
"""

from __future__ import annotations

from dataclasses import replace

from bot.clock import Clock
from bot.config import Config
from bot.features import Feature
from bot.runtime import Runtime


def features() -> list[Feature]:
    from bot import dashboard
    from bot.api import leads as leads_api
    from handlers import (
        accounts,
        buttons,
        escalations,
        fallback,
        leads,
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
        replace(reports.feature, routes=dashboard.routes),  # #团队 #漏斗 #健康 #审计 #看板, questions, weekly digest; /dash/
        replace(leads.feature, routes=leads_api.routes),  # + POST /api/leads; #线索, 认领 / 转派 / 退回 / 详情 / 指派 N, #请假 / #销假
        notes.feature,  # corrections, pending answers, then new notes
        fallback.feature,
    ]


def build_runtime(config: Config, *, clock: Clock | None = None) -> Runtime:
    return Runtime(config, features(), clock=clock)
