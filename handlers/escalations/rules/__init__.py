"""Which ladder watches what: stage → stalled-deal ladder, and the receivable ladder (``escalations.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PACKAGED = Path(__file__).resolve().parent
FILE = "escalations.toml"


@dataclass(frozen=True)
class EscalationRules:
    default_stalled: str = "stalled_deal"
    stalled_by_stage: dict[str, str] = field(default_factory=dict)
    receivable: str = "receivable"

    def stalled_ladder(self, stage: str | None) -> str | None:
        """The ladder watching an open deal in ``stage``; None = not watched."""
        ladder = self.stalled_by_stage.get(stage, self.default_stalled) if stage else self.default_stalled
        return ladder or None

    def ladder_ids(self) -> set[str]:
        return {x for x in (self.default_stalled, self.receivable, *self.stalled_by_stage.values()) if x}


class RulesError(ValueError):
    pass


@lru_cache(maxsize=8)
def load_rules(directory: str = "") -> EscalationRules:
    path = (Path(directory) if directory else PACKAGED) / FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"{path}: {exc}") from exc
    stalled = raw.get("stalled", {})
    stages = stalled.get("stages", {})
    if not isinstance(stages, dict) or not all(isinstance(v, str) for v in stages.values()):
        raise RulesError(f"{path}: stalled.stages: each stage maps to a ladder id (or \"\")")
    return EscalationRules(
        default_stalled=str(stalled.get("default", "stalled_deal")),
        stalled_by_stage=dict(stages),
        receivable=str(raw.get("receivable", {}).get("ladder", "receivable")),
    )
