"""The one way rows are claimed by workers: inbox messages, outbox deliveries and timers.

Several nodes claim from the same tables. A claim is a single ``UPDATE … WHERE id IN
(candidates) RETURNING``: the candidates are picked under ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (SQLite serialises writers), and the UPDATE re-checks the claimable condition
so a row another node took in between is left alone. Rows that must keep an order per
key (one sender's messages, one recipient's replies) are held back while an earlier row
with the same key is unfinished.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    exists,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

#: The bound parameter every prepared claim and probe takes for how many rows to pick.
LIMIT = "claim_limit"


def claim_set(candidates: Select[Any], dialect: str) -> CTE:
    """Rows to claim, as a CTE evaluated exactly once, for ``UPDATE … WHERE id IN (…)``.

    On PostgreSQL a ``LIMIT … FOR UPDATE SKIP LOCKED`` subquery inside ``IN (…)`` can be
    re-evaluated while the UPDATE runs: rows just claimed no longer match, more are pulled
    in and LIMIT is exceeded. A MATERIALIZED CTE pins the set first; SKIP LOCKED lets
    several nodes claim side by side.
    """
    if dialect == "postgresql":
        return candidates.with_for_update(skip_locked=True).cte("claim").prefix_with("MATERIALIZED")
    return candidates.cte("claim")


@dataclass(frozen=True)
class PreparedClaim:
    """A claim built once, executed many times with bound parameters (see :func:`prepare_claim`).

    ``probe`` is the claim's candidate ``SELECT`` without locks: run in a read transaction
    it says whether (and how many) rows could be claimed, so an idle poll costs no write
    transaction. ``claim`` is the ``UPDATE … RETURNING`` itself.
    """

    probe: Select[Any]
    claim: Update


def _candidates(
    model: Any,
    claimable: Callable[[Any], ColumnElement[bool]],
    order_by: Callable[[Any], Sequence[Any]],
    in_order_by: Sequence[str],
    unfinished: Callable[[Any], ColumnElement[bool]] | None,
    where: Callable[[Any], ColumnElement[bool]] | None,
    limit: Any,
) -> Select[Any]:
    # The candidate select uses its own alias: a bare table inside the UPDATE's subquery
    # would be correlated to the UPDATE target, and LIMIT would apply per row.
    cand = aliased(model)
    conditions: list[ColumnElement[bool]] = [claimable(cand)]
    if where is not None:
        conditions.append(where(cand))
    if in_order_by:
        assert unfinished is not None, "per-key order needs to know which rows are unfinished"
        earlier = aliased(model)
        same_key = [getattr(earlier, col) == getattr(cand, col) for col in in_order_by]
        conditions.append(~exists().where(and_(*same_key), unfinished(earlier), earlier.id < cand.id))
    return select(cand.id).where(*conditions).order_by(*order_by(cand)).limit(limit)


def prepare_claim(
    model: Any,
    dialect: str,
    *,
    claimable: Callable[[Any], ColumnElement[bool]],
    values: dict[str, Any],
    returning: Sequence[Any],
    order_by: Callable[[Any], Sequence[Any]] = lambda row: (row.id,),
    in_order_by: Sequence[str] = (),
    unfinished: Callable[[Any], ColumnElement[bool]] | None = None,
    where: Callable[[Any], ColumnElement[bool]] | None = None,
) -> PreparedClaim:
    """:func:`claim_rows` as statements built once: the moment, lease and filters are ``bindparam`` s.

    Building the claim per poll cost more CPU than running it (two aliases of every
    column, a CTE and a new cache key each time: ~3 ms a poll on this box); a prepared
    statement is compiled once and then only bound. ``claimable``, ``values`` and
    ``where`` refer to their parameters with :func:`sqlalchemy.bindparam`; the number of
    rows is the parameter :data:`LIMIT`. The caller keeps the result (per dialect).
    """
    limit = bindparam(LIMIT, type_=Integer)
    candidates = _candidates(model, claimable, order_by, in_order_by, unfinished, where, limit)
    picked = claim_set(candidates, dialect)
    claim = (
        update(model)
        .where(model.id.in_(select(picked.c.id)), claimable(model))
        .values(**values)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    )
    return PreparedClaim(probe=candidates, claim=claim)


async def claim_rows(
    session: AsyncSession,
    model: Any,
    *,
    claimable: Callable[[Any], ColumnElement[bool]],
    values: dict[str, Any],
    returning: Sequence[Any],
    limit: int,
    order_by: Callable[[Any], Sequence[Any]] = lambda row: (row.id,),
    in_order_by: Sequence[str] = (),
    unfinished: Callable[[Any], ColumnElement[bool]] | None = None,
    where: Callable[[Any], ColumnElement[bool]] | None = None,
) -> list[Any]:
    """Claim up to ``limit`` rows of ``model`` in the caller's transaction.

    ``claimable(row)`` says which rows are free now; ``values`` is what the claim writes
    (lease, status, attempt); ``returning`` the columns (or the entity) to return.
    ``in_order_by`` names the columns that define a per-key order: a row is skipped while
    an earlier row with the same key is ``unfinished``. ``where`` narrows the candidates
    further (e.g. only platforms this node delivers to).
    """
    candidates = _candidates(model, claimable, order_by, in_order_by, unfinished, where, limit)
    picked = claim_set(candidates, session.bind.dialect.name)
    stmt = (
        update(model)
        .where(model.id.in_(select(picked.c.id)), claimable(model))
        .values(**values)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return list(result.scalars().all()) if len(returning) == 1 else list(result.all())
