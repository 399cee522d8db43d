"""No UI page loads unbounded data: a view with more versions than a page, more policies deciding
its reads than a page, an on-demand view with more versions than a page. The JSON pages walk the
facade's whole answers (the oracle: ``store.history``, ``store.readers``) exactly, a principal
denied the view gets a 403 for every page of it, and the browser pages through both tables and
opens a diff on the second page.

The repository is ``tests/access_repo.py``'s with those versions and policies added by the admin.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from access_repo import CONV_PERCENT, DRIVER_STATS, ROOT, make_repo
from api_server import Server
from browser import chromium, screenshot, wait_for, wait_page, wait_text

from api import create_app
from api.ui.versions import PAGE
from featurestore import FeatureStore, Policy, Resource
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.transform.code import FunctionCode

pytestmark = pytest.mark.slow

#: Versions of each object: more than a page.
VERSIONS = PAGE + 5
#: Policies deciding who may read driver_stats: more than a page.
READERS = PAGE + 3


def conv_percent(version: int) -> OnDemandFeatureView:
    """Version ``version`` of ``conv_percent``: the same inputs, a scale of its own in its code."""
    code = FunctionCode(
        name="conv_percent",
        source=(
            "def conv_percent(inputs):\n"
            f"    return pd.DataFrame({{'conv_pct': inputs['conv_rate'] * {100 + version}}})"
        ),
        imports=(("pd", "pandas", None),),
    )
    return OnDemandFeatureView(
        name="conv_percent",
        sources=[DRIVER_STATS[["conv_rate"]]],
        schema=CONV_PERCENT.schema,
        code=code,
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root, tokens = make_repo(tmp_path_factory.mktemp("ui-paging"))
    readers = [
        Policy(
            name=f"reader-{k:02d}",
            principals=[f"reader{k}"],
            actions=["read_offline"],
            resources=[Resource(kind="feature_view", name="driver_stats")],
        )
        for k in range(READERS)
    ]
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply(readers)
        for version in range(1, VERSIONS + 1):
            objects: list[Any] = [conv_percent(version)]
            if version > 1:  # driver_stats v1 is make_repo's (TTL one day)
                changed = copy.copy(DRIVER_STATS)
                changed.ttl = timedelta(hours=version)
                objects.append(changed)
            admin.apply(objects)
    return root, tokens


@pytest.fixture(scope="module")
def store(repo: tuple[Path, dict[str, str]]) -> Iterator[FeatureStore]:
    with FeatureStore(repo[0], principal=ROOT) as opened:
        yield opened


@pytest.fixture(scope="module")
def server(store: FeatureStore) -> Iterator[Server]:
    """The UI as ``featurestore ui`` serves it: a request without a token acts as the admin."""
    with Server(store, app=create_app(store, local_ui=True)) as running:
        yield running


def get(server: Server, path: str, token: str | None = None, **params: Any) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.url}/ui/api/{path}", params=params, headers=headers, timeout=30)


def walk(server: Server, path: str, key: str, limit: int) -> list[dict[str, Any]]:
    """Every row of a paged list, a page of ``limit`` at a time; each page's total agrees."""
    rows: list[dict[str, Any]] = []
    while True:
        page = get(server, path, offset=len(rows), limit=limit).json()
        assert page["offset"] == len(rows)
        assert len(page[key]) <= limit
        rows += page[key]
        if not page[key] or len(rows) >= page["total"]:
            assert len(rows) == page["total"]
            return rows


@pytest.mark.parametrize(
    ("kind", "path"),
    [("feature_view", "views/driver_stats"), ("on_demand_feature_view", "on-demand/conv_percent")],
)
def test_versions_pages_walk_the_whole_history(
    server: Server, store: FeatureStore, kind: str, path: str
) -> None:
    name = path.rpartition("/")[2]
    oracle = list(reversed(store.history(name, kind)))
    assert len(oracle) == VERSIONS
    first = get(server, path).json()["versions"]
    assert (first["total"], len(first["versions"])) == (VERSIONS, PAGE)
    for limit in (1, 7, PAGE):
        shown = walk(server, f"{path}/versions", "versions", limit)
        assert [(v["version"], v["change"], v["content_hash"], v["applied_at"]) for v in shown] == [
            (e.version, e.change, e.content_hash, e.applied_at.isoformat()) for e in oracle
        ]
    assert first["versions"] == walk(server, f"{path}/versions", "versions", PAGE)[:PAGE]


def test_readers_pages_walk_every_deciding_policy(server: Server, store: FeatureStore) -> None:
    oracle = store.readers("driver_stats")["policies"]
    assert len(oracle) >= READERS
    first = get(server, "views/driver_stats").json()["readers"]
    assert (first["total"], first["policies"]) == (len(oracle), oracle[:PAGE])
    for limit in (1, 6):
        assert walk(server, "views/driver_stats/readers", "policies", limit) == oracle


def test_a_denied_principal_gets_no_page(server: Server, repo: tuple[Path, dict[str, str]]) -> None:
    mallory = repo[1]["mallory"]
    for path in ("versions", "versions/1", "readers"):
        response = get(server, f"views/customer_profile/{path}", mallory)
        assert response.status_code == 403, (path, response.text)
        assert "customer_profile" in response.json()["error"]["message"]
        assert get(server, f"views/driver_stats/{path}", mallory).status_code == 200


def test_the_browser_pages_through_versions_and_readers(server: Server) -> None:
    with chromium() as driver:
        driver.get(f"{server.url}/ui/#/view/driver_stats")
        wait_page(driver, "view")
        assert len(driver.find_elements("css selector", "#versions tbody tr")) == PAGE
        assert len(driver.find_elements("css selector", "#readers tbody tr")) == PAGE
        first = driver.find_element("css selector", "#versions tbody tr").text
        assert first.startswith(f"v{VERSIONS} ")
        driver.find_element("css selector", "#versions + .pager .next").click()
        wait_text(driver, "#versions tbody tr", f"v{VERSIONS - PAGE} ")
        rows = driver.find_elements("css selector", "#versions tbody tr")
        assert [r.text.split()[0] for r in rows] == [f"v{v}" for v in range(VERSIONS - PAGE, 0, -1)]
        driver.find_element("css selector", '.diff-btn[data-version="2"]').click()
        diff = wait_for(driver, "#diff-table")
        removed = [e.text for e in diff.find_elements("css selector", ".del")]
        added = [e.text for e in diff.find_elements("css selector", ".add")]
        assert any('"ttl_seconds": 86400' in line for line in removed), removed
        assert any('"ttl_seconds": 7200' in line for line in added), added
        driver.find_element("css selector", "#readers-pager .next").click()
        wait_text(
            driver, "#readers-pager", f"{PAGE + 1}\u2013"
        )  # the pager reads "21 to 23 of 23" with an en dash
        shown = driver.find_elements("css selector", "#readers tbody tr")
        assert 0 < len(shown) <= PAGE
        screenshot(driver, "view-paged")
