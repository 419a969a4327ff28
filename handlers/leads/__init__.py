"""Leads: intake (files, API, chat), de-duplication, routing, offers with a claim SLA, claims and the manager queue.

The routing core (``rules``, ``intake``, ``files``, ``dedupe``, ``routing``, ``simulate``) is
pure and database-free so the policy can be unit-tested and simulated over a CSV before
sales ops switch a rule on. ``service`` loads the state under a lock, calls the core and
writes the outcome in the caller's transaction; ``commands`` act on a routed lead; ``handlers`` are the chat commands and
``cards`` what people see. The ``lead_claim`` ladder's levels are handled here.
"""

from __future__ import annotations

from bot.features import Feature
from handlers.leads.commands import on_lead_claim_level
from handlers.leads.handlers import router

feature = Feature("leads", router=router, ladders={"lead_claim": on_lead_claim_level})
