"""Schema versions, applied in order on start: a ``schema_version`` table remembers which ran.

Alembic would be one more dependency and a migration environment for what is, so far, two
tables; a numbered list of steps is enough and runs the same on SQLite and PostgreSQL. Replicas
starting together serialize on a lock (PostgreSQL: a transaction-level advisory lock; SQLite:
the ``BEGIN IMMEDIATE`` write lock the caller holds), so each step runs exactly once.

To change the schema: append a step; never edit a released one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from sqlalchemy import Column, Double, Integer, MetaData, Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

# Any constant shared by all replicas (fits a signed 64-bit bigint): "smokega" in ASCII.
_ADVISORY_LOCK_KEY = 0x736D6F6B656761

schema_version = Table(
    "schema_version",
    MetaData(),
    Column("version", Integer, primary_key=True),
    Column("applied_at", Double, nullable=False),
)

Step = Callable[[AsyncConnection, MetaData], Awaitable[None]]


async def _v1_initial(conn: AsyncConnection, metadata: MetaData) -> None:
    """jobs (the durable queue) and runs (the history with each JSON report)."""
    tables = [metadata.tables["jobs"], metadata.tables["runs"]]
    await conn.run_sync(lambda sync: metadata.create_all(sync, tables=tables))


MIGRATIONS: list[tuple[int, Step]] = [(1, _v1_initial)]
LATEST = MIGRATIONS[-1][0]


async def migrate(conn: AsyncConnection, metadata: MetaData, dialect: str) -> list[int]:
    """Apply the missing steps inside the caller's write transaction; returns those applied."""
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
    await conn.run_sync(lambda sync: schema_version.create(sync, checkfirst=True))
    done = set((await conn.execute(select(schema_version.c.version))).scalars())
    applied = []
    for version, step in MIGRATIONS:
        if version in done:
            continue
        await step(conn, metadata)
        await conn.execute(schema_version.insert().values(version=version, applied_at=time.time()))
        applied.append(version)
    return applied


async def current_version(conn: AsyncConnection) -> int:
    rows = (await conn.execute(select(schema_version.c.version))).scalars().all()
    return max(rows, default=0)
