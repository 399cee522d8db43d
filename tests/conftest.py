"""Shared fixtures: registry URLs for SQLite and PostgreSQL, and small definitions.

PostgreSQL tests use ``FEATURESTORE_TEST_POSTGRES_URL`` (default: the local server's ``test``
database). Each test gets a schema of its own, dropped afterwards. When the server cannot be
reached the tests fail if ``CI`` is set (never a silent skip in CI) and are skipped loudly otherwise.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis_cluster import RedisClusterProcesses, free_cluster_ports
from redis_process import RedisProcess
from sqlalchemy.engine import make_url

from featurestore.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
)
from featurestore.types import Float32, Int64, ValueType

POSTGRES_URL = os.environ.get(
    "FEATURESTORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A registry URL for a new SQLite file in a folder that does not exist yet."""
    return f"sqlite:///{tmp_path / 'registry' / 'registry.db'}"


def require_redis(url: str) -> None:
    """Return once the Redis test server at ``url`` answers; fail in CI, skip loudly elsewhere."""
    import redis  # the redis extra: only the tests that need the server import it

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # any failure to connect means "no server" here
        reason = f"Redis at {url} is unreachable ({type(exc).__name__}): start redis-server"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so Redis tests must run: {reason}")
        pytest.skip(f"REDIS TESTS SKIPPED: {reason}")
    finally:
        client.close()


def start_redis_cluster(folder: Path) -> RedisClusterProcesses:
    """A fresh 3-master, 3-replica cluster; fail in CI (skip loudly elsewhere) without redis-server."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        reason = "redis-server / redis-cli are not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so Redis Cluster tests must run: {reason}")
        pytest.skip(f"REDIS CLUSTER TESTS SKIPPED: {reason}")
    cluster = RedisClusterProcesses(folder, free_cluster_ports(6))
    try:
        cluster.create()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start_redis_process(folder: Path) -> RedisProcess:
    """A private, durable redis-server on a free port; fail in CI (skip loudly elsewhere)
    without the binary."""
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so private Redis tests must run: {reason}")
        pytest.skip(f"PRIVATE REDIS TESTS SKIPPED: {reason}")
    server = RedisProcess(folder)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL test server's URL, once it has answered; fail in CI, skip loudly elsewhere."""
    shown = make_url(POSTGRES_URL).render_as_string(hide_password=True)
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any failure to connect means "no server" here
        reason = (
            f"PostgreSQL at {shown} is unreachable ({type(exc).__name__}): start it "
            "(docker compose up postgres) or set FEATURESTORE_TEST_POSTGRES_URL"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so PostgreSQL tests must run: {reason}")
        pytest.skip(f"POSTGRES TESTS SKIPPED: {reason}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A registry URL whose search_path is a fresh schema, dropped after the test."""
    schema = f"fs_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(postgres_server_url).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


class Defs:
    """Builders of small definitions; none of them needs data (the registry reads no source)."""

    def entity(
        self,
        name: str = "driver",
        keys: Sequence[str] = ("driver_id",),
        dtype: ValueType = Int64,
        **meta: str,
    ) -> Entity:
        return Entity(name=name, join_keys=list(keys), value_type=dtype, **meta)

    def view(
        self,
        name: str = "driver_stats",
        *,
        features: Sequence[tuple[str, ValueType]] = (("conv_rate", Float32), ("acc_rate", Float32)),
        entities: Sequence[Entity] | None = None,
        ttl: timedelta | None = timedelta(hours=2),
        path: str = "data/driver_stats.parquet",
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> FeatureView:
        return FeatureView(
            name=name,
            entities=[self.entity()] if entities is None else list(entities),
            ttl=ttl,
            schema=[Field(name=n, dtype=t) for n, t in features],
            source=FileSource(
                path=path, timestamp_field="event_timestamp", created_timestamp_column="created"
            ),
            description=description,
            tags=tags,
        )

    def service(
        self,
        name: str = "driver_model",
        features: Sequence[FeatureView | FeatureViewProjection] | None = None,
        description: str = "",
    ) -> FeatureService:
        return FeatureService(
            name=name,
            features=[self.view()] if features is None else list(features),
            description=description,
        )


@pytest.fixture
def defs() -> Defs:
    """Builders of definitions for registry tests."""
    return Defs()
