"""Fixtures for the server tests: a store URL per backend (a fresh SQLite file, and a fresh
database on one real PostgreSQL started for the session), and a running ``smokegate serve``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.servers.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as pg:
        yield pg


def fresh_pg_database(pg: PostgresServer) -> str:
    """A new, empty database on ``pg``; returns its URL."""
    import psycopg

    name = f"sg_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg.dsn().rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return fresh_pg_database(request.getfixturevalue("postgres"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[object]:
    from smokegate.store.sql import SqlStore

    s = SqlStore(store_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
