"""Shared fixtures: every storage/pipeline test runs on SQLite and, when
``GENJIN_TEST_PG_URL`` is set, on a fresh PostgreSQL database as well."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.app import build_runtime
from bot.clock import Clock
from bot.config import Config, parse_config
from bot.runtime import Runtime
from nlp.extract import Extractor
from nlp.lexicon import load_lexicon
from tests.harness import Harness

PG_ENV = "GENJIN_TEST_PG_URL"
DEMO_ORG = Path(__file__).resolve().parents[1] / "bot" / "demo" / "org.toml"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where real-model tests assemble the speech weights: the developer's/CI's ``GENJIN_MODEL_CACHE``
    if set (assembled once, reused), else one temp dir for the whole run. Skips when the weight
    packages or faster-whisper are not installed."""
    pytest.importorskip("faster_whisper")
    from nlp.speech.weights import WeightsError, bundled_files  # noqa: PLC0415

    try:
        bundled_files()
    except WeightsError as exc:  # pragma: no cover
        pytest.skip(f"bundled weights not installed: {exc}")
    env = os.environ.get("GENJIN_MODEL_CACHE")
    return Path(env) if env else tmp_path_factory.getbasetemp() / "genjin-models"


async def _create_pg_database(base_url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    import asyncpg

    url = make_url(base_url)
    name = f"{url.database or 'genjin'}_{uuid.uuid4().hex[:10]}"
    admin = dict(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres", password=url.password)
    conn = await asyncpg.connect(database="postgres", **admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(database="postgres", **admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    return url.set(database=name).render_as_string(hide_password=False), drop


def _backends() -> list[Any]:
    return ["sqlite", pytest.param("pg", marks=pytest.mark.pg)]


@pytest.fixture(params=_backends())
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'genjin.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set")
    url, drop = await _create_pg_database(base)
    try:
        yield url
    finally:
        await drop()


def make_config(db_url: str, overrides: dict[str, Any] | None = None) -> Config:
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": 0},
        "pipeline": {"workers": 1, "poll_interval": 0.05, "outbox_backoff_base": 0.05, "outbox_backoff_max": 0.5},
        "logging": {"level": "WARNING"},
    }
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return parse_config(data, "test", env={})


RuntimeFactory = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make_runtime(db_url: str) -> AsyncIterator[RuntimeFactory]:
    """Build a migrated runtime with the demo org imported; workers/HTTP off unless asked."""
    started: list[Runtime] = []

    async def factory(
        overrides: dict[str, Any] | None = None,
        *,
        clock: Clock | None = None,
        org: Path | None = DEMO_ORG,
        http: bool = False,
        workers: bool = False,
    ) -> Runtime:
        from storage.db import transaction
        from storage.org import import_org, parse_org_file

        runtime = build_runtime(make_config(db_url, overrides), clock=clock)
        await runtime.start(http=http, workers=workers)
        started.append(runtime)
        if org is not None:
            async with transaction(runtime.app.sessions) as session:
                await import_org(session, parse_org_file(org))
        return runtime

    yield factory
    for runtime in started:
        await runtime.stop()


@pytest.fixture
async def harness(make_runtime: RuntimeFactory) -> Harness:
    """The demo org on a fresh database, driven step by step through the local channel."""
    return Harness(await make_runtime())


@pytest.fixture(scope="session")
def ex() -> Extractor:
    """One extractor over the packaged lexicon for every extraction case file (it is read-only)."""
    return Extractor(load_lexicon())
