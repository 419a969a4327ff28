"""Talk tracks by #tag from the playbook sales ops edit; the playbook service reloads edited files."""

from bot.features import Feature
from handlers.playbook.handlers import background, router

feature = Feature("playbook", router=router, services=lambda app: [background(app)])
