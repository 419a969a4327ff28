"""Card buttons: a click is handled as the typed command it carries."""

from bot.features import Feature
from handlers.buttons.handlers import router

feature = Feature("buttons", router=router)
