"""Rows a transaction writes at its end, one statement per kind: audit rows, dialog rows.

Why: the pipeline processes a batch of messages in one transaction
(:mod:`bot.pipeline.dispatcher`), and every note used to write its audit rows and its
sender's dialog row with statements of their own, each a round trip (on SQLite each also
holding the single writer). Nothing in the transaction reads those rows back before it
ends, so they wait for the commit, and a batch's rows of one kind go in one executemany.

What keeps this safe:

* Only for rows the transaction does not read back. A statement reading a table with new
  rows waiting (an audit query inside the same transaction: undo, revert; a report joining
  it) writes them first (:func:`install`), and :func:`write_now` does it explicitly. Rows
  changed in place (:func:`set_later`) are held, so ORM reads return them as changed; a
  query whose first entity is their table writes them first, a plain column query of them
  through a join does not (see the callers). A table whose rows are read
  one key at a time through a module that knows its own waiting writes (the dialog rows,
  :mod:`handlers.common.waiting`) is given as no table: reading one person's row must not
  write the batch's other rows.
* Per key the last write wins: a question asked and then cleared is one DELETE.
* They live and die with the transaction: a rollback forgets them (they belong to the
  outermost transaction they were made in); the commit writes them after the ORM's own
  pending rows, which they may refer to, and before COMMIT. A savepoint's commit leaves
  them alone, so a savepoint rolled back (:func:`storage.db.insert_unique`) cannot take
  them with it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Column, Table, bindparam, event, inspect, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import Executable, visitors

_KEY = "storage.deferred"


class _Pending:
    """The writes of one outermost transaction, by key (insertion order kept)."""

    __slots__ = ("columns", "inserted", "rows", "tables", "transaction", "updates", "writes")

    def __init__(self, transaction: object) -> None:
        self.transaction = transaction
        self.writes: dict[Hashable, tuple[Executable, Mapping[str, Any], Table | None]] = {}
        self.tables: set[Table] = set()
        # the ORM rows of set_later, held: the session's identity map only holds unmodified rows weakly,
        # and a row dropped and read again in this transaction would come back with its stored values
        self.rows: dict[Hashable, Any] = {}
        # set_later: the columns changed per row, and the UPDATE of each set of columns (one per set, so grouped)
        self.columns: dict[Hashable, set[str]] = {}
        self.updates: dict[tuple[Table, tuple[str, ...]], Executable] = {}
        # later()'s tables (new rows: the audit trail): any statement reading one writes first, a join or a
        # subquery as well as a query of its rows
        self.inserted: set[Table] = set()


def _pending(session: Session, *, create: bool) -> _Pending | None:
    held: _Pending | None = session.info.get(_KEY)
    transaction = session.get_transaction()
    if held is not None and held.transaction is transaction:
        return held
    if not create:
        return None
    held = _Pending(transaction)
    session.info[_KEY] = held
    return held


def later(session: AsyncSession | Session, statement: Executable, params: Mapping[str, Any], *, table: Table | None,
          key: Hashable | None = None) -> None:
    """Run ``statement`` with ``params`` when the transaction commits (grouped with the same statement's others).

    ``table`` is the table it writes (a statement reading it, even through a join or a
    subquery, first writes what waits; None: its readers know, see above); ``key`` makes a
    later write with the same key replace this one.
    """
    pending = _add(session.sync_session if isinstance(session, AsyncSession) else session, statement, params, table=table,
                   key=key)
    if table is not None:
        pending.inserted.add(table)


def _add(session: Session, statement: Executable, params: Mapping[str, Any], *, table: Table | None,
         key: Hashable | None) -> _Pending:
    pending = _pending(session, create=True)
    assert pending is not None
    pending.writes[key if key is not None else object()] = (statement, params, table)
    if table is not None:
        pending.tables.add(table)
    return pending


def set_later(row: Any, values: Mapping[str, Any], *, table: Table | None) -> None:
    """Set ``values`` on an ORM row; a row already stored is written at commit with the batch's others.

    The row in hand holds the new values at once, without making the session's next flush
    write it (the transaction sees them through the identity map; the row is held until
    the commit). The UPDATE at commit sets, by primary key, only the columns this
    transaction changed on the row, as the ORM's own UPDATE would: a column another
    transaction changed meanwhile (a timer level fired by another node's sweep) keeps its
    value unless this one changed it too. ``table`` is the row's table when an ORM read of
    it must write what waits first (see :func:`later`), else None. A row not yet inserted
    just takes the values into the session's INSERT.
    """
    state = inspect(row)
    if not state.persistent:
        for name, value in values.items():
            setattr(row, name, value)
        return
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    if not changed:
        return  # nothing changes (what an earlier call left waiting already holds these values)
    for name in changed:
        set_committed_value(row, name, values[name])
    assert state.session is not None
    pending = _pending(state.session, create=True)
    assert pending is not None
    key = ("set_later", state.identity_key)
    names = pending.columns.setdefault(key, set())
    names.update(changed)
    mapper = state.mapper
    columns = {name: mapper.get_property(name).columns[0] for name in sorted(names)}
    statement = pending.updates.get((mapper.local_table, tuple(columns)))
    if statement is None:
        statement = _update(mapper.local_table, mapper.primary_key, columns)
        pending.updates[(mapper.local_table, tuple(columns))] = statement
    params = {f"pk_{i}": value for i, value in enumerate(mapper.primary_key_from_instance(row))}
    params.update({f"new_{name}": getattr(row, name) for name in columns})
    _add(state.session, statement, params, table=table, key=key)
    pending.rows[key] = row  # what the transaction reads stays this object until the commit


def _update(table: Table, primary_key: Sequence[Column[Any]], columns: Mapping[str, Column[Any]]) -> Executable:
    """UPDATE ``table`` SET the named columns WHERE its primary key (bound as ``pk_N`` and ``new_NAME``)."""
    where = [column == bindparam(f"pk_{i}", type_=column.type) for i, column in enumerate(primary_key)]
    return update(table).where(*where).values({column.key: bindparam(f"new_{name}", type_=column.type)
                                               for name, column in columns.items()})


def _write(session: Session, pending: _Pending, table: Table | None = None) -> None:
    """Run the waiting writes (those of ``table`` only, when given), each statement's rows as one executemany."""
    if table is None:
        session.info.pop(_KEY, None)
        chosen = list(pending.writes.values())
    else:
        keys = [key for key, (_s, _p, written) in pending.writes.items() if written is table]
        chosen = [pending.writes.pop(key) for key in keys]
        for key in keys:
            pending.rows.pop(key, None)
            pending.columns.pop(key, None)
        pending.tables.discard(table)
        pending.inserted.discard(table)
    groups: dict[Executable, list[Mapping[str, Any]]] = {}
    for statement, params, _table in chosen:
        groups.setdefault(statement, []).append(params)
    for statement, rows in groups.items():
        session.execute(statement, rows)


async def write_now(session: AsyncSession) -> None:
    """Write what waits for the commit now (the ORM's pending rows first)."""
    pending = _pending(session.sync_session, create=False)
    if pending is not None and pending.writes:
        await session.flush()
        await session.run_sync(lambda sync: _write(sync, pending))


def install(session_class: type[Session]) -> None:
    """Write the deferred rows at each commit of ``session_class``'s sessions, and before ORM reads of their tables."""
    # the tables each statement reads, found once per statement object (statements are immutable; the
    # hot ones are built once at import)
    reads: WeakKeyDictionary[Executable, frozenset[Table]] = WeakKeyDictionary()

    @event.listens_for(session_class, "before_commit")
    def _before_commit(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint: the outermost commit writes them
        pending = _pending(session, create=False)
        if pending is not None and pending.writes:
            session.flush()
            _write(session, pending)

    @event.listens_for(session_class, "do_orm_execute")
    def _before_read(state: ORMExecuteState) -> None:
        pending = _pending(state.session, create=False)
        if pending is None or not pending.tables:
            return
        mapper = state.bind_mapper
        due = {mapper.local_table} & pending.tables if mapper is not None else set()
        due |= _inserted_read(pending, state.statement, reads)
        if due:  # only the rows of the tables it reads: the rest still wait for the commit
            state.session.flush()
            for table in due:
                _write(state.session, pending, table)


def _inserted_read(pending: _Pending, statement: Executable, reads: WeakKeyDictionary[Executable, frozenset[Table]]) -> set[Table]:
    """The tables with new rows waiting that ``statement`` reads (not only as its first entity: a report's join)."""
    if not pending.inserted:
        return set()
    tables = reads.get(statement)
    if tables is None:
        tables = frozenset(element for element in visitors.iterate(statement) if isinstance(element, Table))
        reads[statement] = tables
    return set(tables & pending.inserted)
