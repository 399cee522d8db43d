"""The request body limit (``api.max_body_bytes``) on the real server, over a raw socket, so the
tests control exactly how much of a body is ever sent: a 413 that arrives while the body is still
unfinished proves the server never waited to read it whole."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_server import Server, make_repo

from api import ApiSettings
from featurestore import FeatureStore

LIMIT = 100_000
LOOKUP = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1]}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    root: Path = tmp_path_factory.mktemp("limits") / "repo"
    opened = make_repo(root, "{type: sqlite, path: data/online.db, expiry_grace: 36500d}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def server(store: FeatureStore) -> Iterator[Server]:
    with Server(store, ApiSettings(max_body_bytes=LIMIT)) as running:
        yield running


def send_unfinished(server: Server, path: str, headers: list[str], body: bytes) -> bytes:
    """Send a request's head and ``body``, which is NOT the whole body the head announces, and
    return what the server answers (it must answer without the rest)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
        sock.sendall(("\r\n".join(head + headers) + "\r\n\r\n").encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = sock.recv(65536)  # a timeout here means the server waited for the body
            if not chunk:
                break
            answer += chunk
    return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse(answer: bytes) -> tuple[int, dict[str, str], dict[str, dict[str, str]]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, json.loads(body)


def chunked(data: bytes, size: int = 16_384) -> bytes:
    """``data`` in chunked transfer encoding, without the terminating chunk."""
    parts = (data[i : i + size] for i in range(0, len(data), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)


@pytest.mark.parametrize("path", ["/get-online-features", "/push", "/v1/entities"])
def test_a_declared_length_over_the_limit_is_413_before_the_body(server: Server, path: str) -> None:
    # 150 MB announced, 1 KB sent: the answer comes without the rest.
    answer = send_unfinished(server, path, ["Content-Length: 150000000"], b"{" + b" " * 1023)
    status, headers, body = parse(answer)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body["error"]["type"] == "PayloadTooLarge"
    assert "150000000 bytes" in body["error"]["message"]
    assert f"limit of {LIMIT} bytes (api.max_body_bytes)" in body["error"]["message"]


@pytest.mark.parametrize("path", ["/get-online-features", "/push"])
def test_a_chunked_body_is_counted_and_refused_past_the_limit(server: Server, path: str) -> None:
    # No Content-Length: 3x the limit in chunks and never the final chunk.
    answer = send_unfinished(
        server, path, ["Transfer-Encoding: chunked"], chunked(b" " * (3 * LIMIT))
    )
    status, headers, body = parse(answer)
    assert status == 413
    assert headers["connection"] == "close"
    assert body["error"]["type"] == "PayloadTooLarge"
    assert f"limit of {LIMIT} bytes" in body["error"]["message"]


def test_bodies_within_the_limit_are_served_chunked_or_not(server: Server) -> None:
    raw = json.dumps(LOOKUP).encode()
    url = f"{server.url}/get-online-features"
    with_length = httpx.post(url, content=raw, timeout=10)
    assert with_length.status_code == 200, with_length.text
    # A generator body goes out chunked (no Content-Length) and passes the counter.
    streamed = httpx.post(url, content=iter([raw[:10], raw[10:]]), timeout=10)
    assert streamed.status_code == 200, streamed.text
    assert streamed.json() == with_length.json()
    # One byte over the limit is enough.
    big = httpx.post(url, content=b" " * (LIMIT + 1), timeout=10)
    assert big.status_code == 413
    assert big.json()["error"]["type"] == "PayloadTooLarge"


def test_the_limit_comes_from_featurestore_yaml(tmp_path: Path) -> None:
    store = make_repo(
        tmp_path / "repo",
        "{type: sqlite, path: data/online.db, expiry_grace: 36500d}",
        api="api: {max_body_bytes: 64}\n",
    )
    try:
        assert ApiSettings.from_config(store.config).max_body_bytes == 64
        with Server(store) as server:
            response = httpx.post(
                f"{server.url}/get-online-features", content=json.dumps(LOOKUP), timeout=10
            )
        assert response.status_code == 413
        assert "limit of 64 bytes" in response.json()["error"]["message"]
    finally:
        store.close()
