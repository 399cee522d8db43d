"""docker-compose.yml and the Dockerfile, checked without a container engine.

First the files' structure: services, healthchecks, dependencies, the environment each service
gets against the variables ``deploy/featurestore.yaml`` needs, and the files the Dockerfile copies.
Then every service's command runs for real on this machine, as the container would run it:
``redis-server`` on a free port, the PostgreSQL healthcheck against the test server, the
materialize job and the API over a copy of the image's ``/app`` (assembled from the Dockerfile's
``COPY`` lines), with hostnames rewritten to the local servers (registry in a throwaway schema,
Redis db 9 under a key prefix of its own).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from api_server import free_port, wait_until_up
from conftest import require_redis
from sqlalchemy.engine import make_url

from api.app import REPO_ENV
from api.settings import TOKENS_FILE_ENV
from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.online.redis_settings import RedisOnlineStoreConfig

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY_CONFIG = ROOT / "deploy" / "featurestore.yaml"
MATERIALIZE_SCRIPT = ROOT / "deploy" / "materialize.sh"
#: The image's application folder; the test rebuilds it under a temporary root.
APP = "/app"
API_PORT = 6566
#: db 9 is this file's (db 8: API tests, 10/11: benchmarks, 12-14: other tests).
REDIS_URL = os.environ.get("FEATURESTORE_TEST_COMPOSE_REDIS_URL", "redis://127.0.0.1:6379/9")
BIN = Path(sys.executable).parent
DRIVER_FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance"]
DRIVER_TTL = timedelta(hours=2)

# Compose interpolation: $$ is a literal $, ${NAME} and ${NAME:-default}; nothing else is used.
_COMPOSE_VAR = re.compile(r"\$\$|\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}|\$(?P<other>.?)")
# Variables of featurestore.yaml / a shell script: ${NAME}, ${NAME:-default}, ${NAME:?message}.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}")


# -- reading the files --------------------------------------------------------------------------


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` (parsed YAML) with compose's ``${VAR}`` interpolation applied from ``env``."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group("name"), match.group("default")
        assert name is not None, f"unsupported interpolation {match.group(0)!r} in {value!r}"
        if env.get(name):
            return env[name]
        assert default is not None, f"${{{name}}} needs a default (${{{name}:-...}}): {value!r}"
        return default

    return _COMPOSE_VAR.sub(replace, value)


@functools.cache
def compose() -> dict[str, Any]:
    """docker-compose.yml as ``docker compose up`` sees it with no variable set."""
    parsed = interpolate(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")), {})
    assert isinstance(parsed, dict)
    return parsed


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


@dataclass
class Dockerfile:
    base: str = ""
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (sources, destination)
    env: dict[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)
    user: str = "root"


@functools.cache
def dockerfile() -> Dockerfile:
    """The instructions of the Dockerfile that the test relies on."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    parsed = Dockerfile()
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if not instruction or instruction.startswith("#"):
            continue
        if instruction == "FROM":
            parsed.base = rest.strip()
        elif instruction == "COPY":
            args = [arg for arg in shlex.split(rest) if not arg.startswith("--")]
            parsed.copies.append((args[:-1], args[-1]))
        elif instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                parsed.env[key] = value
        elif instruction == "RUN":
            parsed.runs.append(rest)
        elif instruction == "EXPOSE":
            parsed.exposed.extend(int(port) for port in rest.split())
        elif instruction == "USER":
            parsed.user = rest.strip()
    return parsed


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: it or a parent matches the last matching
    pattern (``*`` within a name, ``**`` across folders, ``!`` re-includes)."""

    def regex(pattern: str) -> re.Pattern[str]:
        parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/"))
        wild = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        return re.compile("".join(wild.get(part, re.escape(part)) for part in parts))

    prefixes = ["/".join(path.split("/")[: i + 1]) for i in range(path.count("/") + 1)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        compiled = regex(pattern.lstrip("!"))
        if any(compiled.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def config_variables(text: str) -> dict[str, bool]:
    """Variables that a featurestore.yaml or shell text reads: name -> required (no default).
    Comment lines are skipped, as ``load_config`` skips them."""
    found: dict[str, bool] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for name, modifier in _VAR.findall(line):
            required = not modifier or modifier.startswith((":?", "?"))
            found[name] = found.get(name, False) or required
    return found


# -- running a service's command on this machine -------------------------------------------------


def on_host(value: Any, root: Path) -> Any:
    """A command or value with the image's ``/app`` paths moved under ``root``."""
    if isinstance(value, list):
        return [on_host(item, root) for item in value]
    if value == APP or (isinstance(value, str) and value.startswith(APP + "/")):
        return str(root) + value
    return value


def assemble_image(root: Path) -> None:
    """Copy what the Dockerfile copies into ``/app`` to ``root/app``, as ``COPY`` would."""
    for sources, destination in dockerfile().copies:
        if on_host(destination, root) == destination:
            continue  # the build folder of the package: pip installs it, the venv has it
        into_folder = destination.endswith("/") or len(sources) > 1
        target = Path(on_host(destination, root))
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True)
            else:
                goal = target / path.name if into_folder else target
                goal.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, goal)


def container_env(name: str, root: Path, overrides: dict[str, str]) -> dict[str, str]:
    """The environment of service ``name``: the image's ``ENV``, then the service's, then
    ``overrides``, with this virtualenv's ``python`` and ``featurestore`` first on the PATH."""
    env = {**dockerfile().env, **service(name).get("environment", {})}
    assert all(value is not None for value in env.values()), env
    env = {key: on_host(str(value), root) for key, value in env.items()}
    home = root / "home"
    home.mkdir(exist_ok=True)
    return {
        **env,
        **overrides,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def with_options(argv: list[str], values: dict[str, str]) -> list[str]:
    """``argv`` with the value after each option in ``values`` replaced (each must be there)."""
    out = list(argv)
    for option, value in values.items():
        assert option in out[:-1], f"{option} missing from {argv}"
        out[out.index(option) + 1] = value
    return out


def healthcheck_argv(name: str) -> list[str]:
    test = service(name)["healthcheck"]["test"]
    if test[0] == "CMD":
        return list(test[1:])
    assert test[0] == "CMD-SHELL", test
    assert len(test) == 2, test
    return ["sh", "-c", test[1]]


def passes(argv: list[str], env: dict[str, str] | None = None, within: float = 0.0) -> bool:
    """Whether the healthcheck ``argv`` succeeds, retried for ``within`` seconds as Docker does."""
    deadline = time.monotonic() + within
    while True:
        if subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so {name} must be installed for the compose tests")
        pytest.skip(f"COMPOSE TEST SKIPPED: {name} is not installed")
    return path


def run_job(argv: list[str], env: dict[str, str]) -> str:
    """Run a one-shot command to the end (its whole session is killed on timeout); assert it
    exits 0 and return its output."""
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=180)
    finally:
        stop(process)
    assert process.returncode == 0, output
    return output


def stop(process: subprocess.Popen[Any]) -> None:
    """Stop ``process`` and everything it started (its own session: uvicorn's workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# -- structure ----------------------------------------------------------------------------------


def test_every_compose_variable_has_a_default() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    interpolate(raw, {})  # asserts on a variable without default
    overridden = interpolate(raw, {"FEATURESTORE_API_WORKERS": "4", "POSTGRES_PASSWORD": "s3"})
    assert overridden["services"]["api"]["command"][-1] == "4"
    assert ":s3@postgres:" in overridden["services"]["api"]["environment"]["FEATURESTORE_REGISTRY"]


def test_services_dependencies_and_restarts() -> None:
    # The default profile's services (test_compose_scale_out checks the scale-out profile's).
    services = {
        name: svc for name, svc in compose()["services"].items() if svc.get("profiles") is None
    }
    assert set(services) == {"redis", "postgres", "materialize", "api"}
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:15")
    healthy = {"condition": "service_healthy"}
    assert services["materialize"]["depends_on"] == {"redis": healthy, "postgres": healthy}
    assert services["api"]["depends_on"] == {
        "redis": healthy,
        "postgres": healthy,
        "materialize": {"condition": "service_completed_successfully"},
    }
    assert services["materialize"]["restart"] == "no"  # a job: it must not loop
    for name in ("redis", "postgres", "api"):
        assert services[name]["restart"] == "unless-stopped"


def test_long_running_services_have_healthchecks() -> None:
    for name in ("redis", "postgres", "api"):
        check = service(name)["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert {"interval", "timeout", "retries"} <= set(check), name
    assert "healthcheck" not in service("materialize")  # its exit code is its health


def test_featurestore_services_share_image_data_and_reach_the_servers_by_name() -> None:
    postgres = service("postgres")["environment"]
    declared = set(compose()["volumes"])
    for name in ("materialize", "api"):
        svc = service(name)
        assert svc["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert svc["image"] == service("api")["image"]
        assert "featurestore-data:/app/repo/data" in svc["volumes"]
        env = svc["environment"]
        registry = make_url(env["FEATURESTORE_REGISTRY"])
        assert registry.drivername == "postgresql+psycopg"
        assert (registry.host, registry.port) == ("postgres", 5432)
        assert registry.username == postgres["POSTGRES_USER"]
        assert registry.password == postgres["POSTGRES_PASSWORD"]
        assert registry.database == postgres["POSTGRES_DB"]
        assert env["FEATURESTORE_REDIS_URL"].startswith("redis://redis:6379/")
    for svc in compose()["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            # A named volume, or a file of this checkout mounted read-only.
            if source.startswith("./"):
                assert (ROOT / source).is_file(), volume
                assert volume.endswith(":ro"), volume
            else:
                assert source in declared, volume


def test_deploy_config_gets_every_variable_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needed = config_variables(DEPLOY_CONFIG.read_text(encoding="utf-8"))
    script = config_variables(MATERIALIZE_SCRIPT.read_text(encoding="utf-8"))
    # Read by the service itself, not the config: tokens, and the repository of each worker.
    consumed = set(needed) | set(script) | {TOKENS_FILE_ENV, REPO_ENV}
    (tmp_path / "featurestore.yaml").write_bytes(DEPLOY_CONFIG.read_bytes())
    for name in ("materialize", "api"):
        env = service(name)["environment"]
        missing = {var for var, required in needed.items() if required} - set(env)
        assert not missing, f"{name} does not set {sorted(missing)}"
        unused = {var for var in env if var.startswith("FEATURESTORE_")} - consumed
        assert not unused, f"{name} sets {sorted(unused)}, which nothing reads"
        for var in [v for v in os.environ if v.startswith("FEATURESTORE_")]:
            monkeypatch.delenv(var)
        for var, value in env.items():
            monkeypatch.setenv(var, str(value))
        config = load_config(tmp_path)
        assert config.project == "demo"
        assert config.registry == env["FEATURESTORE_REGISTRY"]
        assert config.online_store.type == "redis"
        assert config.online_store == RedisOnlineStoreConfig(
            url="redis://redis:6379/0", key_prefix="fs:", expiry_grace=timedelta(days=3650)
        )
        assert config.offline_store.temp_directory == "data/duckdb_tmp"  # inside the volume


def test_dockerfile_copies_files_that_the_build_context_holds() -> None:
    image = dockerfile()
    assert image.base == "python:3.11-slim"
    assert image.user not in {"root", "0"}
    # quality: the example view's expectation suite runs in the materialize job and on push.
    assert any("pip install" in run and "[redis,postgres,quality]" in run for run in image.runs)
    patterns = dockerignore_patterns()
    for sources, _destination in image.copies:
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: no such file"
            files = [path]
            if path.is_dir():
                files = [f for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
            assert files, source
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                assert not dockerignored(relative, patterns), f".dockerignore drops {relative}"
    # ... while what must stay out does.
    for relative in (".venv/bin/python", "repo/data/driver_stats.parquet", ".git/HEAD"):
        assert dockerignored(relative, patterns), relative
    assert dockerignored("featurestore/__pycache__/config.cpython-311.pyc", patterns)


def test_api_port_is_the_same_everywhere() -> None:
    api = service("api")
    assert dockerfile().exposed == [API_PORT]
    assert api["command"][api["command"].index("--port") + 1] == str(API_PORT)
    assert [mapping.rsplit(":", 1)[1] for mapping in api["ports"]] == [str(API_PORT)]
    assert f"127.0.0.1:{API_PORT}/health" in api["healthcheck"]["test"][-1]


# -- every service's command, for real ----------------------------------------------------------


@pytest.mark.redis
def test_redis_service_command_and_healthcheck(tmp_path: Path) -> None:
    binary = require_binary("redis-server")
    require_binary("redis-cli")
    command = service("redis")["command"]
    assert command[0] == "redis-server"
    port = free_port()
    # The compose command as is; the port, the interface and the data folder are the test's.
    argv = [
        binary,
        *command[1:],
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
    ]
    check = healthcheck_argv("redis")
    assert check[-1].count("redis-cli ") == 1, check
    check[-1] = check[-1].replace("redis-cli ", f"redis-cli -h 127.0.0.1 -p {port} ")
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        assert passes(check, within=10), f"healthcheck {check} never passed"
    finally:
        stop(process)
    assert process.returncode == 0, "redis-server did not shut down cleanly"
    assert not passes(check), "the healthcheck passes with no server"


@pytest.mark.postgres
def test_postgres_healthcheck(postgres_server_url: str) -> None:
    require_binary("pg_isready")
    url = make_url(postgres_server_url)
    local = {
        "-h": url.host or "127.0.0.1",
        "-p": str(url.port or 5432),
        "-U": url.username or "postgres",
        "-d": url.database or "postgres",
    }
    check = healthcheck_argv("postgres")
    assert check[0] == "pg_isready"
    assert passes(with_options(check, local)), "pg_isready fails against the test server"
    assert not passes(with_options(check, {**local, "-h": "127.0.0.1", "-p": str(free_port())}))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in db 9; its keys are deleted afterwards."""
    require_redis(REDIS_URL)
    import redis  # the redis extra, as in conftest

    prefix = f"fs_compose_{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def count_keys(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}*", count=1000))
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_materialize_job_then_api_service(
    tmp_path: Path, postgres_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "image"
    assemble_image(root)
    repo = root / "app" / "repo"
    assert sorted(p.name for p in repo.iterdir()) == [
        ".featurestoreignore",
        "features.py",
        "featurestore.yaml",
        "generate_data.py",
    ]
    # The servers are the local ones: the registry in a throwaway schema, Redis db 9.
    servers = {
        "FEATURESTORE_REGISTRY": postgres_url,
        "FEATURESTORE_REDIS_URL": REDIS_URL,
        "FEATURESTORE_REDIS_KEY_PREFIX": redis_prefix,
    }

    # The one-shot job: generate the data, apply, materialize; then again, as a schedule would.
    job = on_host(service("materialize")["command"], root)
    job_env = container_env("materialize", root, servers)
    output = run_job(job, job_env)
    drivers = pd.read_parquet(repo / "data" / "driver_stats.parquet")
    customers = pd.read_parquet(repo / "data" / "customer_profile.parquet")
    keys = drivers["driver_id"].nunique() + customers["customer_id"].nunique()
    assert "Applied to project 'demo'." in output
    assert f"total (2 views): {len(drivers) + len(customers):,} rows read, {keys} keys" in output
    assert count_keys(redis_prefix) == keys
    assert "keeping the data" in run_job(job, job_env)
    assert count_keys(redis_prefix) == keys

    # The API: its command through this virtualenv's `featurestore`, on a free port.
    assert shutil.which("featurestore", path=job_env["PATH"]) == str(BIN / "featurestore")
    port = free_port()
    argv = with_options(
        on_host(service("api")["command"], root), {"--host": "127.0.0.1", "--port": str(port)}
    )
    api_env = container_env("api", root, servers)
    health = healthcheck_argv("api")
    assert health[-1].count(f"127.0.0.1:{API_PORT}/") == 1
    health[-1] = health[-1].replace(f"127.0.0.1:{API_PORT}/", f"127.0.0.1:{port}/")
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "api.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv, env=api_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_up(url, timeout=60)
        assert passes(health, env=api_env, within=20), log.read_text()
        response = httpx.post(
            f"{url}/get-online-features",
            json={
                "features": [f"driver_hourly_stats:{name}" for name in DRIVER_FEATURES],
                "entities": {"driver_id": [1]},
            },
            timeout=30,
        )
        now = datetime.now(UTC)
    finally:
        stop(process)
    assert response.status_code == 200, response.text
    assert not passes(health, env=api_env), "the healthcheck passes with no server"
    assert "Traceback" not in log.read_text(), log.read_text()

    # Driver 1's latest row is what the job wrote and the API read back.
    latest = drivers[drivers["driver_id"] == 1].sort_values("event_timestamp").iloc[-1]
    event = latest["event_timestamp"].to_pydatetime()
    fresh = event >= now - DRIVER_TTL
    body = response.json()
    assert body["metadata"]["feature_names"] == ["driver_id", *DRIVER_FEATURES]
    assert body["results"][0]["values"] == [1]
    for name, result in zip(DRIVER_FEATURES, body["results"][1:], strict=True):
        stamp = datetime.fromisoformat(result["event_timestamps"][0].replace("Z", "+00:00"))
        assert stamp == event, name
        # The example data ends on 2026-10-01, so at today's date its values are stale.
        assert result["statuses"] == ["PRESENT" if fresh else "OUTSIDE_MAX_AGE"], name
        expected = pytest.approx(float(latest[name]), rel=1e-6) if fresh else None
        assert result["values"] == [expected], name

    # The values themselves, as of that row's event time, through the SDK on the same stores.
    for var in [v for v in os.environ if v.startswith("FEATURESTORE_")]:
        monkeypatch.delenv(var)
    for var, value in api_env.items():
        if var.startswith("FEATURESTORE_"):
            monkeypatch.setenv(var, value)
    store = FeatureStore(repo_path=repo)
    try:
        online = store.get_online_features(
            [f"driver_hourly_stats:{name}" for name in DRIVER_FEATURES],
            entity_rows=[{"driver_id": 1}],
            as_of=event,
        )
    finally:
        store.close()
    for name in DRIVER_FEATURES:
        assert online.statuses[name][0].value == "PRESENT", name
        assert online.to_dict()[name] == [pytest.approx(float(latest[name]), rel=1e-6)], name
