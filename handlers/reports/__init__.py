"""Reports: ``#团队`` ``#漏斗`` ``#健康`` ``#审计`` ``#看板``, plain-word questions, the weekly digest, health scores.

Every figure comes from :mod:`handlers.reports.queries` through the asker's
:class:`storage.scope.Scope`; the web dashboard (``bot/dashboard``) calls the same queries.
"""

from bot.features import Feature
from handlers.reports.handlers import router
from handlers.reports.jobs import register_jobs

feature = Feature("reports", router=router, jobs=register_jobs)
