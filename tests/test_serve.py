"""`featurestore serve` in a subprocess: the start-up line, a port in use (its own exit code),
and the exit codes table of docs/cli.md against the code."""

from __future__ import annotations

import ast
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_server import free_port, make_repo, wait_until_up

from featurestore.cli import exit_codes

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "featurestore")
SQLITE_ONLINE = "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("serve") / "repo"
    store = make_repo(root, SQLITE_ONLINE)
    store.close()
    return root, store.project


def serve(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [COMMAND, "--repo", str(repo), "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    return stderr


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_prints_its_url_and_docs(repo: tuple[Path, str], workers: str) -> None:
    root, project = repo
    port = free_port()
    process = serve(root, "--port", str(port), "--workers", workers)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        url = f"http://127.0.0.1:{port}"
        assert line == f"Serving {project} on {url} (docs: {url}/docs)"
        wait_until_up(url, timeout=120)  # workers start slowly on a loaded machine
        docs = httpx.get(f"{url}/docs", timeout=10)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
    finally:
        stderr = stop(process)
    assert "Traceback" not in stderr, stderr


@pytest.mark.slow
def test_port_zero_prints_the_port_really_bound(repo: tuple[Path, str]) -> None:
    root, project = repo
    process = serve(root, "--port", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(
            rf"Serving {project} on (http://127\.0\.0\.1:(\d+)) \(docs: \1/docs\)", line
        )
        assert match is not None, line
        assert int(match.group(2)) > 0
        wait_until_up(match.group(1), timeout=120)
        assert httpx.get(f"{match.group(1)}/health", timeout=10).status_code == 200
    finally:
        stop(process)


@pytest.mark.slow
def test_a_port_in_use_has_its_own_exit_code(repo: tuple[Path, str]) -> None:
    root, _ = repo
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = serve(root, "--port", str(port))
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == exit_codes.CANNOT_LISTEN == 4
    assert process.returncode != exit_codes.FINDING
    assert stderr.strip() == (
        f"Error: cannot serve on 127.0.0.1:{port}: the port is already in use (another "
        "`featurestore serve`?); stop that process or pass another --port"
    )
    assert "Serving" not in stdout


@pytest.mark.slow
def test_an_address_not_of_this_machine_cannot_listen(repo: tuple[Path, str]) -> None:
    root, _ = repo
    # TEST-NET-1 (RFC 5737): never an address of this machine.
    process = serve(root, "--host", "192.0.2.1", "--port", str(free_port()))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exit_codes.CANNOT_LISTEN
    assert stderr.startswith("Error: cannot serve on 192.0.2.1:"), stderr
    assert "Traceback" not in stderr


def documented_exit_codes() -> dict[int, str]:
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("## Exit codes and errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def test_one_table_documents_every_exit_code() -> None:
    codes = {getattr(exit_codes, name) for name in exit_codes.__all__}
    documented = documented_exit_codes()
    assert set(documented) == codes
    assert sorted(documented) == list(documented)  # one table, in order
    assert "serve" in documented[exit_codes.CANNOT_LISTEN]
    assert "drift" in documented[exit_codes.FINDING]
    assert "serve" not in documented[exit_codes.FINDING]


def test_the_cli_exits_only_with_the_named_codes() -> None:
    """No bare number in an exit: every one is a constant of featurestore.cli.exit_codes."""
    literals = []
    for path in (ROOT / "featurestore" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = ast.unparse(node.func)
            if name in ("sys.exit", "SystemExit", "exit") and isinstance(
                node.args[0], ast.Constant
            ):
                literals.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert literals == []
