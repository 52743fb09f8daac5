"""``examples/protocols.yaml`` runs as shipped against real servers seeded like the "shop" app
it describes: the example is documentation, so it must stay correct."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.protocols.conftest import Certs, Run, run_with_reports
from tests.servers.grpc_health import GrpcHealthServer
from tests.servers.mariadb import MariaDBServer
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "protocols.yaml"
APP_PASSWORDS = {kind: f"app-{kind}-{uuid.uuid4().hex}" for kind in ("pg", "my", "rd")}


async def _seed_postgres(pg: PostgresServer) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(pg.dsn(), autocommit=True) as admin:
        await admin.execute("DROP DATABASE IF EXISTS orders")
        await admin.execute("CREATE DATABASE orders")
        await admin.execute("DROP ROLE IF EXISTS shop_app")
        await admin.execute(f"CREATE ROLE shop_app LOGIN PASSWORD '{APP_PASSWORDS['pg']}'")
    async with await psycopg.AsyncConnection.connect(
        pg.dsn().replace("/postgres", "/orders"), autocommit=True
    ) as db:
        await db.execute(
            "CREATE TABLE orders (id serial PRIMARY KEY, status text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
        await db.execute("INSERT INTO orders (status) VALUES ('paid'), ('shipped'), ('paid')")
        await db.execute("GRANT SELECT ON orders TO shop_app")  # least privilege, like prod


async def _seed_mariadb(db: MariaDBServer) -> None:
    import aiomysql

    conn = await aiomysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password, autocommit=True
    )
    try:
        cur = await conn.cursor()
        for sql in (
            "CREATE OR REPLACE DATABASE catalog",
            "CREATE TABLE catalog.products (id INT PRIMARY KEY, active BOOL,"
            " updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
            "INSERT INTO catalog.products (id, active) VALUES (1, 1), (2, 0), (3, 1)",
            f"CREATE OR REPLACE USER 'shop_app'@'%' IDENTIFIED BY '{APP_PASSWORDS['my']}'",
            "GRANT SELECT ON catalog.* TO 'shop_app'@'%'",
        ):
            await cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def example_run(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    mariadb: MariaDBServer,
    redis: RedisServer,
    grpc_tls_server: GrpcHealthServer,
    certs: Certs,
) -> Run:
    async def seed() -> None:
        await _seed_postgres(postgres)
        await _seed_mariadb(mariadb)

    asyncio.run(seed())
    redis.command("ACL", "SETUSER", "shop_app", "on", f">{APP_PASSWORDS['rd']}", "~*", "+@all")
    redis.command("SET", "feature:checkout-v2", "on", db=1)
    grpc_tls_server.set_status("shop.payments.v1.Payments", "SERVING")
    env = {
        "SHOP_CA_FILE": str(certs.ca),
        "ORDERS_DB_HOST": "127.0.0.1",
        "ORDERS_DB_PORT": str(postgres.port),
        "ORDERS_DB_PASSWORD": APP_PASSWORDS["pg"],
        "CATALOG_DB_HOST": "127.0.0.1",
        "CATALOG_DB_PORT": str(mariadb.port),
        "CATALOG_DB_PASSWORD": APP_PASSWORDS["my"],
        "SESSIONS_REDIS_HOST": "127.0.0.1",
        "SESSIONS_REDIS_TLS_PORT": str(redis.tls_port),
        "SESSIONS_REDIS_PASSWORD": APP_PASSWORDS["rd"],
        "PAYMENTS_GRPC_TARGET": grpc_tls_server.target,
    }
    return run_with_reports(EXAMPLE, tmp_path_factory.mktemp("example"), env)


def test_example_passes_against_real_servers(example_run: Run) -> None:
    assert example_run.cli.code == 0, example_run.cli.text
    results = {r["name"]: r for r in example_run.report["results"]}
    assert set(results) == {
        "orders-db",
        "catalog-db",
        "sessions-cache",
        "checkout-flag",
        "payments-grpc",
        "payments-api",
    }
    assert {r["status"] for r in results.values()} == {"passed"}
    assert all(r["details"]["tls"] is True for r in results.values())
    assert results["orders-db"]["details"]["rows"] == 1


def test_example_redacts_the_passwords(example_run: Run) -> None:
    for password in APP_PASSWORDS.values():
        assert password not in example_run.everything()


def test_example_without_credentials_is_a_clear_usage_error() -> None:
    result = run_cli("lint", str(EXAMPLE), env={"ORDERS_DB_PASSWORD": ""})
    # Passwords come from the environment: unset ones are named, nothing is attempted.
    assert result.code == 2, result.text
    assert "CATALOG_DB_PASSWORD" in result.err
