"""Tasks: next actions with due dates, ``完成`` / ``推迟`` / ``#待办``, and the reminder job."""

from bot.features import Feature
from handlers.tasks.handlers import router
from handlers.tasks.jobs import register_jobs

feature = Feature("tasks", router=router, jobs=register_jobs)
