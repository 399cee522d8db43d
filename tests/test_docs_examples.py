"""The documentation's examples run, for real, so they cannot drift from the code.

Every fenced ``bash``, ``sh`` and ``python`` block of README.md and docs/*.md runs against a fresh
copy of the example repository with XS data (generated and applied once, as ``make quickstart``
does), one copy per document, the blocks of a document in order:

* a document's Python blocks share one interpreter (later blocks use the names earlier ones
  define, as a reader would type them); a block's error names the file and line;
* a shell block runs in bash, every command must exit 0, or with the code its comment documents
  (``# exit 3 if ...``);
* a block that cannot run says so in the doc, with an HTML comment right before it:
  ``<!-- not-run: why -->``. Nothing is skipped silently: an unmarked block runs;
* an output block marked ``<!-- output-checked -->`` right after a Python block must equal what
  that block printed (plus the value of a last bare expression, as a REPL shows it), modulo
  whitespace.

The documented exceptions, applied here and nowhere else, are :data:`WORKDIR` (which folder a
document's examples run in), :data:`SKIPPED_COMMANDS` (setting up the machine), and ``serve``
and ``ui``, which run in the background each on a free port (the port a later command names is
moved with it) and are queried by the commands after them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
RUNNABLE = {"bash", "sh", "python"}
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->$")
OUTPUT_CHECKED = "<!-- output-checked -->"
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")

#: Where a document's examples run, relative to the folder that holds the example ``repo/``:
#: these pages say "run in the repository" (``--repo .``, ``repo_path="."``).
WORKDIR = {"docs/online.md": "repo"}
#: Shell commands that set up a machine (the test has done it already), never run here.
SKIPPED_COMMANDS = re.compile(r"^(make|pip|python -m pip|docker|docker-compose)\b")
#: ``featurestore ... serve`` (or ``ui``) in a shell block: started in the background, each on a
#: free port (the first on the port that replaces 6566 in the block).
SERVE = re.compile(r"^featurestore\b.*\b(serve|ui)\b")
DOCUMENTED_EXIT = re.compile(r"#.*\bexit (\d+)\b")


@dataclass(frozen=True)
class Block:
    """One fenced block of a document."""

    doc: str
    line: int
    lang: str
    code: str
    not_run: str | None
    checked_output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The document's runnable blocks, each with its not-run reason and checked output."""
    doc = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        body = "\n".join(lines[start + 1 : i]) + "\n"
        marker = _previous_line(lines, start)
        lang = opening.group("lang")
        if lang in RUNNABLE:
            skip = NOT_RUN.match(marker)
            blocks.append(Block(doc, start + 1, lang, body, skip.group("reason") if skip else None))
        elif marker == OUTPUT_CHECKED:
            assert blocks, f"{doc}:{start + 1}: {OUTPUT_CHECKED} before the first code block"
            previous = blocks.pop()
            assert previous.lang == "python", f"{doc}:{start + 1}: checks a non-Python block"
            blocks.append(replace(previous, checked_output=body))
        i += 1
    return blocks


def _previous_line(lines: list[str], index: int) -> str:
    """The last non-blank line before ``index``."""
    for line in reversed(lines[:index]):
        if line.strip():
            return line.strip()
    return ""


def test_every_marker_is_well_formed() -> None:
    """A typo in a marker would silently run (or check) nothing: every marker must parse."""
    for path in DOCUMENTS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "not-run" in line:
                assert NOT_RUN.match(line.strip()), f"{path.name}:{number}: {line!r}"
            if "output-checked" in line:
                assert line.strip() == OUTPUT_CHECKED, f"{path.name}:{number}: {line!r}"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``repo/``, the example repository with XS data, applied."""
    base = tmp_path_factory.mktemp("docs") / "base"
    shutil.copytree(ROOT / "repo", base / "repo", ignore=shutil.ignore_patterns("data"))
    run_checked([sys.executable, "repo/generate_data.py", "--size", "XS"], base)
    run_checked([str(BIN / "featurestore"), "--repo", "repo", "apply"], base)
    return base


def run_checked(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment())
    assert result.returncode == 0, (command, result.stdout, result.stderr)


def environment() -> dict[str, str]:
    """The test's environment with this venv's scripts first (``featurestore`` is the one
    under test) and the working tree on the import path."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for name in ("FEATURESTORE_DEBUG", "FEATURESTORE_TOKEN", "FEATURESTORE_REPO"):
        env.pop(name, None)
    env["COLUMNS"] = "200"
    return env


def example_environment(workspace: Path) -> dict[str, str]:
    """:func:`environment`, with the scratch folders examples make kept inside ``workspace``."""
    scratch = workspace / "scratch"
    scratch.mkdir(exist_ok=True)
    return {**environment(), "TMPDIR": str(scratch)}


DOCUMENTS_WITH_BLOCKS = [
    p.relative_to(ROOT).as_posix()
    for p in DOCUMENTS
    if any(b.not_run is None for b in parse_blocks(p))
]


@pytest.mark.parametrize("doc", DOCUMENTS_WITH_BLOCKS)
def test_documented_examples_run(doc: str, example: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(example, workspace)
    cwd = workspace / WORKDIR.get(doc, ".")
    blocks = [b for b in parse_blocks(ROOT / doc) if b.not_run is None]
    python = [b for b in blocks if b.lang == "python"]
    env = example_environment(workspace)
    outputs = run_python(python, cwd, env) if python else {}
    for block in blocks:
        if block.lang != "python":
            run_shell(block, cwd, env)
        elif block.checked_output is not None:
            assert _words(outputs[block.where]) == _words(block.checked_output), (
                f"{block.where}: the doc shows\n{block.checked_output}\nbut the code printed\n"
                f"{outputs[block.where]}"
            )


def _words(text: str) -> list[str]:
    return text.split()


# -- Python ------------------------------------------------------------------------------------

RUNNER = textwrap.dedent(
    """
    import ast, contextlib, io, json, sys, traceback
    blocks = json.load(sys.stdin)
    namespace = {"__name__": "__docs__"}
    outputs = {}
    for block in blocks:
        tree = ast.parse(block["code"], filename=block["where"])
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                exec(compile(tree, block["where"], "exec"), namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), block["where"], "eval"), namespace)
                    if value is not None:
                        print(repr(value))
        except BaseException:
            print(json.dumps({"failed": block["where"], "output": captured.getvalue(),
                              "traceback": traceback.format_exc()}))
            sys.exit(1)
        outputs[block["where"]] = captured.getvalue()
    print(json.dumps({"outputs": outputs}))
    """
)


def run_python(blocks: list[Block], cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """Run a document's Python blocks in one interpreter; each block's printed output."""
    payload = json.dumps([{"where": b.where, "code": b.code} for b in blocks])
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=payload,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    if "failed" in report:
        pytest.fail(f"{report['failed']} failed:\n{report['traceback']}\n{result.stderr[-2000:]}")
    assert result.returncode == 0, result.stderr[-4000:]
    outputs: dict[str, str] = report["outputs"]
    return outputs


# -- shell -------------------------------------------------------------------------------------


def shell_commands(code: str) -> list[str]:
    """The block's commands, continuation lines joined; comment-only lines dropped."""
    commands: list[str] = []
    pending = ""
    for line in code.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            commands.append(pending.strip())
            pending = ""
    if pending:
        commands.append(pending.strip())
    return commands


def shell_script(block: Block, port: int) -> str:
    """A bash script that runs the block's commands one by one and stops at the first one that
    exits with a code its comment does not document; ``serve`` goes to the background."""
    lines = ["set -u", "servers=()", 'trap \'for p in "${servers[@]}"; do kill "$p"; done\' EXIT']
    started = 0
    moved: dict[str, str] = {}
    for command in shell_commands(block.code):
        if SKIPPED_COMMANDS.match(command):
            lines.append(f"# skipped (sets up the machine): {command}")
            continue
        if SERVE.match(command):
            at = port if not started else _free_port()
            log = f"serve-{started}.log"
            started += 1
            command = command.split("#")[0].strip().removesuffix("&").strip()
            asked = re.search(r"--port\s+(\d+)", command)
            if asked is not None and asked.group(1) != "6566":
                moved[asked.group(1)] = str(at)  # later commands reach it there
            command = re.sub(r"--port\s+\d+", f"--port {at}", command)
            if "--port" not in command:
                command += f" --port {at}"
            lines += [
                f"{command} > {log} 2>&1 &",
                "servers+=($!)",
                f"curl -s -o /dev/null --retry 60 --retry-delay 1 --retry-connrefused "
                f"http://127.0.0.1:{at}/health || {{ cat {log} >&2; exit 97; }}",
            ]
            continue
        for asked_port, at_port in moved.items():
            command = command.replace(f":{asked_port}", f":{at_port}")
        documented = DOCUMENTED_EXIT.search(command)
        allowed = "0" if documented is None else f"0|{documented.group(1)}"
        quoted = command.replace("'", "'\\''")
        lines += [
            command,
            f"status=$?; case $status in {allowed}) ;; *) printf 'exit %s: %s\\n' \"$status\" "
            f"'{quoted}' >&2; exit 98;; esac",
        ]
    return "\n".join(lines) + "\n"


def run_shell(block: Block, cwd: Path, env: dict[str, str]) -> None:
    port = _free_port()
    script = shell_script(block, port).replace("6566", str(port))
    # A session of its own: on a timeout the whole group goes, a background server included.
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{block.where}: still running after 600 s")
    assert process.returncode == 0, (
        f"{block.where}: {stderr[-3000:]}\n--- stdout ---\n{stdout[-3000:]}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
