"""Escalations: stalled deals and overdue payments climb their ladders; cards with buttons; payment plans.

Timers watch each open deal (stage → ladder in ``rules/escalations.toml``) and each
installment with a due date; the notes feature restarts a deal's clock on counting
activity through :mod:`handlers.escalations.hooks`.
"""

from __future__ import annotations

from bot.features import Feature
from handlers.escalations.handlers import received_preprocessor, router
from handlers.escalations.jobs import register_jobs
from handlers.escalations.ladders import on_receivable, on_stalled
from handlers.escalations.rules import load_rules

_rules = load_rules()
LADDERS = {
    **{ladder: on_stalled for ladder in _rules.ladder_ids() if ladder != _rules.receivable},
    _rules.receivable: on_receivable,
}

feature = Feature("escalations", router=router, preprocessors=(received_preprocessor,), jobs=register_jobs, ladders=LADDERS)
