"""Hospitals and contacts: alias-aware lookup and creation; ``#客户`` shows one hospital at a glance."""

from bot.features import Feature
from handlers.accounts.handlers import router

feature = Feature("accounts", router=router)
