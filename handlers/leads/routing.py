"""The routing decision: which rep is offered a lead, and why — a pure function.

``route`` takes everything it needs as arguments (the lead, the rules, a snapshot of the
reps' state, the time) and returns a :class:`Decision`; it reads no clock and writes
nothing.  The database service owns the side: lock the pool's reps, load the snapshot,
call ``route``, write the offer and bump the counters in the same transaction.  The same
function drives ``simulate`` over a CSV, where :meth:`RoutingState.apply` plays the part
of the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from handlers.leads.intake import LeadInput
from handlers.leads.rules import Member, Pool, Rules

OFFERED = "offered"
MANAGER_QUEUE = "manager_queue"


@dataclass(slots=True)
class RepState:
    """What routing needs to know about one rep right now.

    ``capacity`` is the org's open-lead capacity (``Person.capacity``); a pool member's
    ``open_cap`` is a tighter, pool-specific limit.  ``offers_today`` is in the team's
    local day (the service counts it; routing does not know time zones).
    """

    active: bool = True
    away_until: datetime | None = None
    open_leads: int = 0
    offers_today: int = 0
    offers_7d: int = 0
    last_offer_at: datetime | None = None
    capacity: int | None = None


@dataclass(slots=True)
class RoutingState:
    """Reps' state plus what is specific to this lead (excluded reps, hospital owner, attempts).

    ``excluded`` are reps who let this lead's offer expire or sent it back; ``attempts`` is
    how many offers this lead has had, so ``settings.max_offers`` can stop the merry-go-round.
    """

    reps: dict[str, RepState] = field(default_factory=dict)
    excluded: frozenset[str] = frozenset()
    hospital_owner: str | None = None
    attempts: int = 0

    def for_lead(self, excluded: frozenset[str] = frozenset(), hospital_owner: str | None = None,
                 attempts: int = 0) -> RoutingState:
        """The same reps (shared, not copied) with another lead's specifics."""
        return RoutingState(self.reps, frozenset(excluded), hospital_owner, attempts)

    def apply(self, decision: Decision, now: datetime) -> None:
        """Record an offer the way the database service would (in-memory, for simulate)."""
        if decision.status != OFFERED or decision.assignee is None:
            return
        rep = self.reps.setdefault(decision.assignee, RepState())
        rep.open_leads += 1
        rep.offers_today += 1
        rep.offers_7d += 1
        rep.last_offer_at = now


@dataclass(frozen=True, slots=True)
class Decision:
    status: str  # offered | manager_queue
    assignee: str | None
    rule: str | None
    pool: str | None
    reason: str
    skipped: tuple[tuple[str, str], ...] = ()
    pools_tried: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "assignee": self.assignee, "rule": self.rule, "pool": self.pool,
                "reason": self.reason, "skipped": [list(s) for s in self.skipped], "pools_tried": list(self.pools_tried)}


def route(lead: LeadInput, rules: Rules, state: RoutingState, now: datetime) -> Decision:
    """Offer the lead to one rep, or send it to the manager queue; says why in Chinese.

    Order: the first matching rule picks a pool; the hospital's account owner goes first if
    eligible; otherwise the pool's strategy picks among eligible members; if none is
    eligible the pool's fallback chain is followed (each pool once); then the manager queue.
    """
    rule = rules.first_match(lead)
    if rule is None:
        return Decision(MANAGER_QUEUE, None, None, None, "没有匹配的分配规则，转经理分配")
    if state.attempts >= rules.settings.max_offers:
        return Decision(MANAGER_QUEUE, None, rule.id, rule.pool,
                        f"已派发{state.attempts}次无人接单（上限{rules.settings.max_offers}次），转经理分配")
    skipped: list[tuple[str, str]] = []
    first_pool = rules.pools.get(rule.pool)

    if state.hospital_owner:
        owner = state.hospital_owner
        why = _ineligible(owner, first_pool.member(owner) if first_pool else None, state, now)
        if why is None:
            return Decision(OFFERED, owner, rule.id, rule.pool, f"{owner} 已负责该医院，优先派给医院负责人",
                            (), (rule.pool,))
        skipped.append((owner, f"医院负责人，但{why}"))

    tried: list[str] = []
    pool_id: str | None = rule.pool
    while pool_id is not None and pool_id not in tried:
        tried.append(pool_id)
        pool = rules.pools.get(pool_id)
        if pool is None:
            skipped.append(("", f"资源池 {pool_id} 未定义"))
            break
        chosen = _pick(pool, state, now, skipped)
        if chosen is not None:
            path = " → ".join(tried[:-1])
            via = f"资源池 {path} 无人可派 → 后备池 {pool.id}" if len(tried) > 1 else f"资源池 {pool.id}"
            return Decision(OFFERED, chosen, rule.id, pool.id, f"规则 {rule.id} → {via}，"
                            f"{_strategy_reason(pool, chosen, state)}", tuple(skipped), tuple(tried))
        pool_id = pool.fallback
    return Decision(MANAGER_QUEUE, None, rule.id, rule.pool,
                    f"规则 {rule.id}：资源池 {' → '.join(tried)} 无可分配的销售，转经理分配", tuple(skipped), tuple(tried))


def _ineligible(rep: str, member: Member | None, state: RoutingState, now: datetime) -> str | None:
    """Why ``rep`` may not be offered this lead now, or ``None`` when they may."""
    rs = state.reps.get(rep)
    if rs is None:
        return "不在组织名单中"
    if not rs.active:
        return "已停用"
    if rep in state.excluded:
        return "已放弃或超时未接此线索"
    if rs.away_until is not None and rs.away_until > now:
        return f"休假中（至 {rs.away_until:%m-%d %H:%M}）"
    caps = [c for c in (member.open_cap if member else None, rs.capacity) if c is not None]
    if caps and rs.open_leads >= min(caps):
        return f"在手线索已满（{rs.open_leads}/{min(caps)}）"
    if member is not None and member.daily_cap is not None and rs.offers_today >= member.daily_cap:
        return f"今日派单已满（{rs.offers_today}/{member.daily_cap}）"
    return None


def _pick(pool: Pool, state: RoutingState, now: datetime, skipped: list[tuple[str, str]]) -> str | None:
    eligible: list[Member] = []
    for member in pool.members:
        why = _ineligible(member.rep, member, state, now)
        if why is None:
            eligible.append(member)
        elif (member.rep, why) not in skipped:
            skipped.append((member.rep, why))
    if not eligible:
        return None
    return min(eligible, key=lambda m: _rank(pool.strategy, m, state.reps[m.rep])).rep


def _rank(strategy: str, member: Member, rs: RepState) -> tuple[float, float, str]:
    """weighted_rr: fewest recent offers per weight; least_load: fewest open leads per weight.

    Ties go to whoever waited longest since their last offer, then to the rep key, so the
    result never depends on dict order or the clock's resolution.
    """
    load = rs.offers_7d if strategy == "weighted_rr" else rs.open_leads
    waited = rs.last_offer_at.timestamp() if rs.last_offer_at is not None else float("-inf")
    return load / member.weight, waited, member.rep


def _strategy_reason(pool: Pool, rep: str, state: RoutingState) -> str:
    rs, member = state.reps[rep], pool.member(rep)
    weight = member.weight if member else 1
    if pool.strategy == "least_load":
        return f"按负载最低派给 {rep}（在手{rs.open_leads}条，权重{weight}）"
    return f"按加权轮转派给 {rep}（近7天{rs.offers_7d}次，权重{weight}）"


def initial_state(org_people: Any, counts: Mapping[str, RepState] | None = None) -> RoutingState:
    """A fresh state from the org (key → active, or people with key/active/capacity)."""
    reps: dict[str, RepState] = {}
    if isinstance(org_people, Mapping):
        items = [(k, v) for k, v in org_people.items()]
    else:
        items = [(p, True) if isinstance(p, str) else (p.key, p) for p in org_people]
    for key, value in items:
        if isinstance(value, RepState):
            reps[key] = replace(value)
            continue
        active = bool(getattr(value, "active", value))
        capacity = getattr(value, "capacity", None)
        reps[key] = RepState(active=active, capacity=capacity if isinstance(capacity, int) else None)
    for key, rs in (counts or {}).items():
        reps[key] = replace(rs)
    return RoutingState(reps)
