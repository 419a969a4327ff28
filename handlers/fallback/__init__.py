"""The catch-all answer for anything no other feature claimed."""

from bot.features import Feature
from handlers.fallback.handlers import router

feature = Feature("fallback", router=router)
