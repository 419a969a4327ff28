"""Per-process read caches for rows every message looks up but that rarely change: people, accounts (by name and id).

Why: a typical note used to read the sender (twice) and the hospital (twice) from the
database; on SQLite every statement also holds the single writer connection. These rows
change only when the org is imported, a hospital is created, renamed or gets an alias.

How staleness stays safe (several nodes, ``genjin org import`` in another process):

* Writes through this process's sessions invalidate everything at commit: a session
  event sees new, changed or deleted ``Person``/``Team``/``Account`` objects and ORM
  ``UPDATE``/``DELETE`` statements on those tables (see :meth:`Lookups.watch`).
* Entries are filled only from committed data: a lookup made inside a transaction is
  remembered when that transaction commits and forgotten if it rolls back, so a row
  created by a transaction that failed never gets into the cache.
* Every entry expires after ``ttl`` seconds (of the injected clock): a change made by
  another node or process is seen within that bound. A TTL rather than a version row
  because bumping a version would need every writer (the org import CLI, other
  features' writes) to cooperate, and a version check is itself a round trip per message.
* A miss always falls back to the database, and "not found" is never cached, so a person
  or hospital added elsewhere is found at once; a cached hospital that another node
  deleted fails the note's insert (foreign key), the dispatcher drops the caches on any
  handler error and the retry reads the database.

Cached values are plain column snapshots, never ORM instances (those belong to one
session); :func:`attach` turns a snapshot into a persistent instance of the caller's
session without a query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Delete, Update, event, inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, make_transient_to_detached

from storage.models import Account, Person, Team

T = TypeVar("T")
DEFAULT_TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000  # a cache that grows past this (many distinct spellings) starts over
_WATCHED = (Person, Team, Account)
_PENDING = "lookups.pending"  # session.info: entries to remember when the transaction commits
_STALE = "lookups.stale"  # session.info: the transaction wrote a watched table


def snapshot(row: Any) -> dict[str, Any]:
    """The row's column values (JSON lists copied: the snapshot must not share them with a session)."""
    values: dict[str, Any] = {}
    for attr in inspect(row).mapper.column_attrs:
        value = getattr(row, attr.key)
        values[attr.key] = list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
    return values


def attach(session: AsyncSession, model: type[T], values: dict[str, Any]) -> T:
    """A persistent ``model`` instance in ``session`` built from ``values``, without a query.

    If the session already holds that row, its instance is returned (the identity map wins).
    """
    sync = session.sync_session
    existing = sync.identity_map.get(sync.identity_key(model, values["id"]))
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    row = model(**{k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v for k, v in values.items()})
    make_transient_to_detached(row)
    return session.sync_session.merge(row, load=False)


class _Cache:
    def __init__(self) -> None:
        self.entries: dict[Any, tuple[datetime, dict[str, Any]]] = {}


class Lookups:
    """People by platform identity and accounts by written name, shared by the sessions of one app."""

    def __init__(self, now: Callable[[], datetime], ttl: float = DEFAULT_TTL_SECONDS) -> None:
        self._now = now
        self.ttl = timedelta(seconds=ttl)
        self._people = _Cache()
        self._accounts = _Cache()
        self._accounts_by_id = _Cache()
        self.hits = 0
        self.misses = 0

    # ---- reading ----

    def _get(self, cache: _Cache, key: Any) -> dict[str, Any] | None:
        entry = cache.entries.get(key)
        if entry is None or self._now() - entry[0] >= self.ttl:
            if entry is not None:
                del cache.entries[key]
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def person(self, platform: str, sender: str) -> dict[str, Any] | None:
        """The cached snapshot of the active person writing as ``sender`` on ``platform``."""
        return self._get(self._people, (platform, sender))

    def account(self, written: str) -> dict[str, Any] | None:
        """The cached snapshot of the account a rep means by ``written`` (as :func:`find_account` resolved it)."""
        return self._get(self._accounts, written)

    def account_by_id(self, account_id: int) -> dict[str, Any] | None:
        """The cached snapshot of account ``account_id`` (filled whenever an account is remembered)."""
        return self._get(self._accounts_by_id, account_id)

    # ---- filling (on commit) and invalidating ----

    # ``session``: the transaction the value was read in (remembered at its commit); None for a
    # read-only session whose data is committed already.
    def remember_person(self, session: AsyncSession | None, platform: str, sender: str, person: Person) -> None:
        self._remember(session, self._people, (platform, sender), snapshot(person))

    def remember_account(self, session: AsyncSession | None, written: str | None, account: Account) -> None:
        """Remember ``account`` by its id and, with ``written``, by the name the rep wrote."""
        values = snapshot(account)
        if written is not None:
            self._remember(session, self._accounts, written, values)
        self._remember(session, self._accounts_by_id, values["id"], values)

    def _remember(self, session: AsyncSession | None, cache: _Cache, key: Any, values: dict[str, Any]) -> None:
        if session is None:
            self._put(cache, key, values, self._now())
            return
        session.info.setdefault(_PENDING, []).append((cache, key, values))

    def _put(self, cache: _Cache, key: Any, values: dict[str, Any], now: datetime) -> None:
        if len(cache.entries) >= MAX_ENTRIES:
            cache.entries.clear()
        cache.entries[key] = (now, values)

    def invalidate(self) -> None:
        """Forget everything (a watched table was written, or a handler failed)."""
        self._people.entries.clear()
        self._accounts.entries.clear()
        self._accounts_by_id.entries.clear()

    def watch(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Invalidate on this app's own writes; fill pending entries on commit, drop them on rollback."""
        factory = sessions.kw.get("sync_session_class", Session)
        # Listen on a subclass per app, so two apps in one process (tests) never see each other's events.
        watched = type("LookupSession", (factory,), {})
        sessions.configure(sync_session_class=watched)

        @event.listens_for(watched, "before_flush")
        def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
            for obj in (*session.new, *session.dirty, *session.deleted):
                if isinstance(obj, _WATCHED) and (obj in session.new or obj in session.deleted or session.is_modified(obj)):
                    session.info[_STALE] = True
                    return

        @event.listens_for(watched, "do_orm_execute")
        def _on_execute(state: Any) -> None:
            stmt = state.statement
            if isinstance(stmt, (Update, Delete)) and getattr(stmt.table, "name", None) in {m.__tablename__ for m in _WATCHED}:
                state.session.info[_STALE] = True

        @event.listens_for(watched, "after_commit")
        def _after_commit(session: Session) -> None:
            pending = session.info.pop(_PENDING, [])
            if session.info.pop(_STALE, False):
                self.invalidate()
                return
            now = self._now()
            for cache, key, values in pending:
                self._put(cache, key, values, now)

        @event.listens_for(watched, "after_transaction_end")
        def _after_end(session: Session, transaction: Any) -> None:
            if transaction.parent is None:  # the outermost transaction: after a rollback nothing is remembered
                session.info.pop(_PENDING, None)
                session.info.pop(_STALE, None)
