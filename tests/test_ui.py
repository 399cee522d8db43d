"""The web UI end to end: the example repository (``repo/``, XS data, a recorded history) behind
the real service (uvicorn over a socket), clicked through in headless Chromium: every page, a
search, a facet, a version diff, the on-demand view's page and its code diff, a lineage node, the
audit filter. Each page's screenshot goes to
``docs/ui-screenshots/`` (see docs/ui.md).

The JSON the pages draw is checked against what the facade answers (the oracle) on the same repo;
the time to the first drawn page is printed (``-s`` shows it; no assertion on it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from api_server import Server
from browser import chromium, screenshot, wait_for, wait_page, wait_text
from ui_repo import CODE_V1, CODE_V2, DATASET, ON_DEMAND, make_example_repo

from api import create_app
from api.ui.quality import MAX_BARS, histogram
from featurestore import FeatureStore
from featurestore.quality.profile import ColumnStats

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    root = make_example_repo(tmp_path_factory.mktemp("ui") / "repo")
    with FeatureStore(root) as opened:
        yield opened


@pytest.fixture(scope="module")
def server(store: FeatureStore) -> Iterator[Server]:
    with Server(store) as running:
        yield running


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def get(server: Server, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server.url}/ui/api/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def open_page(driver: Any, server: Server, fragment: str, page: str) -> None:
    driver.get(f"{server.url}/ui/#/{fragment}")
    wait_page(driver, page)


# -- the pages, in the browser -----------------------------------------------------------------


def test_catalog_search_and_facets(driver: Any, server: Server) -> None:
    driver.get(f"{server.url}/ui/")
    wait_page(driver, "catalog")
    first = driver.execute_script("return document.body.dataset.firstRenderMs")
    navigation = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return [n.responseEnd, n.domContentLoadedEventEnd]"
    )
    print(
        f"\nUI first render (catalog, example repo): {first} ms after navigation start "
        f"(HTML in {navigation[0]:.0f} ms, DOM ready {navigation[1]:.0f} ms)"
    )
    results = wait_for(driver, "#results")
    assert "driver_hourly_stats:conv_rate" in results.text
    screenshot(driver, "catalog")

    search = driver.find_element("css selector", "#search")
    search.clear()
    search.send_keys("balance\n")
    results = wait_text(driver, "#results", "current_balance")
    rows = results.find_elements("css selector", "tbody tr")
    assert [r.find_element("css selector", ".result").text for r in rows] == [
        "customer_daily_profile:current_balance"
    ]
    screenshot(driver, "catalog-search")

    open_page(driver, server, "catalog", "catalog")
    facet = next(
        a
        for a in driver.find_elements("css selector", "a.facet")
        if a.text.startswith("team=mobility")
    )
    facet.click()
    wait_for(driver, 'a.facet.on[data-facet="tag"]')
    names = [e.text for e in driver.find_elements("css selector", "#results .result")]
    assert names
    # The two views tagged team=mobility (repo/features.py, repo/trips.py) and their features.
    tagged = ("driver_hourly_stats", "driver_trip_stats")
    assert all(n.split(":")[0] in tagged for n in names), names
    assert {n.split(":")[0] for n in names} == set(tagged)


def test_view_page_statistics_drift_validations(driver: Any, server: Server) -> None:
    open_page(driver, server, "catalog?q=driver_hourly_stats&kind=feature_view", "catalog")
    wait_for(driver, "#results a.result").click()
    wait_page(driver, "view")
    assert "conv_rate" in wait_for(driver, "#schema").text
    assert "2h" in driver.find_element("css selector", "#source").text  # the TTL
    # The quality sections load on their own: histograms, the drift plots, the validations.
    wait_for(driver, "#statistics .stat svg.histogram rect")
    wait_for(driver, "#drift #psi-plot polyline")
    wait_for(driver, "#drift .drift-plot svg rect.bar.current")
    assert "passed" in wait_for(driver, "#validations-table").text
    assert "materialized up to" in driver.find_element("css selector", "#freshness").text
    assert "Everyone" in driver.find_element("css selector", "#readers").text
    generic = driver.find_element("css selector", "#more")
    assert "Aggregations, transformations" in generic.text
    screenshot(driver, "view")


def test_version_diff(driver: Any, server: Server) -> None:
    open_page(driver, server, "view/customer_daily_profile", "view")
    wait_for(driver, "#statistics .stat")
    button = wait_for(driver, '.diff-btn[data-version="2"]')
    button.click()
    diff = wait_for(driver, "#diff-table")
    removed = [e.text for e in diff.find_elements("css selector", ".del")]
    added = [e.text for e in diff.find_elements("css selector", ".add")]
    assert any('"ttl_seconds": 172800' in line for line in removed), removed
    assert any('"ttl_seconds": 86400' in line for line in added), added
    screenshot(driver, "view-diff")


def test_on_demand_page_code_diff_and_lineage(driver: Any, server: Server) -> None:
    open_page(driver, server, "catalog?kind=on_demand_feature_view", "catalog")
    results = wait_for(driver, "#results")
    assert [e.text for e in results.find_elements("css selector", ".result")] == [ON_DEMAND]
    results.find_element("css selector", "a.result").click()
    wait_page(driver, "on-demand")
    assert "distance_ratio" in wait_for(driver, "#od-schema").text
    assert driver.find_element("css selector", "#mode").text == "pandas"
    inputs = driver.find_element("css selector", "#od-inputs").text
    assert "driver_hourly_stats" in inputs
    assert "trip_request" in inputs
    assert "trip_distance_km" in inputs
    code = driver.find_element("css selector", "#code")
    assert code.get_attribute("data-version") == "2"
    assert CODE_V2 in code.text
    assert "def trip_fit" in code.text
    assert "may read its values" in driver.find_element("css selector", "#od-values").text
    screenshot(driver, "on-demand")

    driver.find_element("css selector", '.code-btn[data-version="1"]').click()
    assert CODE_V1 + ")" in wait_for(driver, '#code[data-version="1"]').text
    driver.find_element("css selector", '.diff-btn[data-version="2"]').click()
    diff = wait_for(driver, "#diff-table")
    removed = [e.text for e in diff.find_elements("css selector", ".del")]
    added = [e.text for e in diff.find_elements("css selector", ".add")]
    assert [line for line in removed if "clip" in line]
    assert all(CODE_V2 not in r for r in removed)
    assert any(CODE_V2 in line for line in added), added
    screenshot(driver, "on-demand-diff")

    node = wait_for(driver, '#od-graph .node[data-id="feature_view:driver_hourly_stats@1"]')
    node.click()
    detail = wait_text(driver, "#node-detail", "on_demand_feature_view:trip_fit@2")
    assert "request_source:trip_request" not in detail.text  # not downstream of the view
    driver.find_element("css selector", '#od-graph .node[data-id^="request_source:"]').click()
    wait_text(driver, "#node-detail", "on_demand_feature_view:trip_fit@2")
    driver.find_element("css selector", "#od-inputs a.input-link").click()
    wait_page(driver, "view")
    assert "driver_hourly_stats" in driver.find_element("css selector", "h1").text


def lcs_length(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
            )
    return table[len(a)][len(b)]


def test_side_by_side_diff_keeps_both_texts_and_a_longest_common_part(
    driver: Any, server: Server
) -> None:
    """The page's line diff (``lineDiff`` in app.js, run in the browser) on random texts: the
    left column is the old text, the right the new one, in order, and the rows kept as they are
    are as many as a longest common subsequence (brute force) has lines."""
    open_page(driver, server, "catalog", "catalog")
    rng = np.random.default_rng(16)
    for _ in range(60):
        a = [str(x) for x in rng.integers(0, 4, size=int(rng.integers(0, 12)))]
        b = [str(x) for x in rng.integers(0, 4, size=int(rng.integers(0, 12)))]
        rows = driver.execute_script("return lineDiff(arguments[0], arguments[1])", a, b)
        assert [left for _, left, _ in rows if left is not None] == a
        assert [right for _, _, right in rows if right is not None] == b
        same = [(left, right) for kind, left, right in rows if kind == "same"]
        assert all(left == right for left, right in same)
        assert len(same) == lcs_length(a, b)
        for kind, left, right in rows:
            assert (left is None) == (kind == "add")
            assert (right is None) == (kind == "del")


def test_lineage_node(driver: Any, server: Server) -> None:
    open_page(driver, server, "lineage", "lineage")
    node = wait_for(driver, '#graph .node[data-id="feature_view:driver_hourly_stats@1"]')
    node.click()
    detail = wait_text(driver, "#node-detail", "driver_hourly_stats")
    assert "source:data/driver_stats.parquet" in detail.text
    assert "feature_service:driver_activity@1" in detail.text
    lit = driver.find_elements("css selector", "#graph .edge.lit")
    assert len(lit) >= 3  # the source, the entity, the service
    screenshot(driver, "lineage")
    driver.find_element("css selector", "#open-view").click()
    wait_page(driver, "view")
    assert "driver_hourly_stats" in driver.find_element("css selector", "h1").text


def test_datasets_page(driver: Any, server: Server, store: FeatureStore) -> None:
    open_page(driver, server, "datasets", "datasets")
    table = wait_for(driver, "#datasets")
    saved = store.get_saved_dataset(DATASET)
    assert DATASET in table.text
    for view, version in saved.views.items():
        assert f"{view}@{version}" in table.text
    screenshot(driver, "datasets")


def test_audit_page_filter(driver: Any, server: Server) -> None:
    open_page(driver, server, "audit", "audit")
    wait_for(driver, "#audit tbody tr")
    action = driver.find_element("css selector", "#audit-action")
    action.send_keys("apply\n")
    wait_for(driver, 'body[data-page="audit"][data-ready="1"]')
    wait_text(driver, "#audit tbody", "apply")
    actions = [
        row.find_elements("css selector", "td")[3].text
        for row in driver.find_elements("css selector", "#audit tbody tr")
    ]
    assert actions
    assert set(actions) == {"apply"}
    screenshot(driver, "audit")


# -- the JSON, against the facade ----------------------------------------------------------------


def test_catalog_search_matches_a_brute_force_filter(server: Server, store: FeatureStore) -> None:
    everything = get(server, "catalog", limit=200)["items"]
    views = [*store.list_feature_views(), *store.list_on_demand_feature_views()]
    expected_features = {f"{v.name}:{f.name}" for v in views for f in v.features}
    assert {i["name"] for i in everything if i["kind"] == "feature"} == expected_features
    assert {i["name"] for i in everything if i["kind"] == "feature_view"} == {
        v.name for v in store.list_feature_views()
    }
    assert [i["name"] for i in everything if i["kind"] == "on_demand_feature_view"] == [ON_DEMAND]
    for item in everything:
        if item["view"] is not None:
            assert item["view_kind"] == store.registry.kinds_named(store.project, item["view"])[0]
    for needle in ["rate", "PII", "customer-data@", "team=mobility", "daily", "zzz", "trip"]:
        found = get(server, "catalog", q=needle, limit=200)
        oracle = [
            i
            for i in everything
            if needle.lower()
            in " ".join(
                [
                    i["name"],
                    i["description"],
                    i["owner"],
                    *(f"{k}={v}" for k, v in i["tags"].items()),
                ]
            ).lower()
        ]
        assert found["items"] == oracle, needle
        owners: dict[str, int] = {}
        for item in oracle:
            if item["owner"]:
                owners[item["owner"]] = owners.get(item["owner"], 0) + 1
        assert found["facets"]["owners"] == dict(sorted(owners.items()))
    # Paging walks the same list.
    pages = [
        get(server, "catalog", offset=o, limit=4)["items"] for o in range(0, len(everything), 4)
    ]
    assert [i for p in pages for i in p] == everything


def test_on_demand_json_matches_the_registry(server: Server, store: FeatureStore) -> None:
    page = get(server, f"on-demand/{ON_DEMAND}")
    history = list(reversed(store.history(ON_DEMAND, "on_demand_feature_view")))
    assert page["current_version"] == history[0].version == 2
    assert [v["version"] for v in page["versions"]["versions"]] == [e.version for e in history]
    assert page["versions"]["total"] == len(history)
    assert page["values_readable"] is True
    for version in (1, 2):
        stored = store.get_on_demand_feature_view(ON_DEMAND, version)
        shown = get(server, f"on-demand/{ON_DEMAND}/versions/{version}")["definition"]
        assert shown["code"] == stored.code.spec()
        assert shown["mode"] == stored.mode
        assert [(f["name"], f["dtype"]) for f in shown["features"]] == [
            (f.name, f.dtype.name) for f in stored.schema
        ]
        read = {i["name"]: [f["name"] for f in i["features"]] for i in shown["inputs"]}
        assert read == {
            v: [f.name for f in fields] for v, fields in stored.view_sources.items()
        } | {r.name: [f.name for f in r.schema] for r in stored.request_sources}
    assert page["definition"] == get(server, f"on-demand/{ON_DEMAND}/versions/2")["definition"]
    lineage = get(server, "lineage", focus=ON_DEMAND, kind="on_demand_feature_view")
    ids = {n["id"] for n in lineage["nodes"]}
    assert {"on_demand_feature_view:trip_fit@2", "request_source:trip_request"} <= ids
    source = store.registry.current_version(store.project, "feature_view", "driver_hourly_stats")
    assert f"feature_view:driver_hourly_stats@{source}" in ids
    missing = httpx.get(f"{server.url}/ui/api/on-demand/nope", timeout=30)
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]["message"]
    absent = httpx.get(f"{server.url}/ui/api/on-demand/{ON_DEMAND}/versions/9", timeout=30)
    assert absent.status_code == 404
    assert "available versions" in absent.text


def test_audit_json_pages_back_through_the_whole_log(server: Server, store: FeatureStore) -> None:
    oracle = [r.id for r in reversed(store.audit_log())]
    seen: list[int] = []
    before = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({} if before is None else {"before": before})
        page = get(server, "audit", **params)
        seen += [r["id"] for r in page["records"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == oracle
    applies = get(server, "audit", action="apply", resource="customer_daily", limit=200)
    assert [r["id"] for r in applies["records"]] == [
        r.id for r in reversed(store.audit_log(action="apply")) if "customer_daily" in r.resource
    ]


def test_statistics_json_is_bounded_and_matches_the_history(
    server: Server, store: FeatureStore
) -> None:
    history = list(reversed(store.statistics_history("driver_hourly_stats")))
    shown = get(server, "views/driver_hourly_stats/statistics", limit=1, offset=1)
    assert [s["id"] for s in shown["statistics"]] == [history[1].id]
    for column in shown["statistics"][0]["columns"]:
        stats = history[1].profile.columns[column["name"]]
        assert len(column["histogram"]) <= MAX_BARS
        assert sum(b["count"] for b in column["histogram"]) == stats.values
        assert "grid" not in column


@pytest.mark.parametrize("seed", range(5))
def test_histogram_counts_every_value_once(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=int(rng.integers(1, 500))), int(rng.integers(0, 3)))
    grid = sorted(set(np.quantile(values, np.linspace(0, 1, 101)).tolist()))
    cumulative = [int((values <= g).sum()) for g in grid]
    column = ColumnStats(
        name="x", kind="numeric", dtype="Float64", rows=len(values), nulls=0,
        distinct=None, min=None, max=None, mean=None, stddev=None, quantiles={},
        top_values=[], grid=grid, cumulative=cumulative, categories=[],
    )  # fmt: skip
    bars = histogram(column)
    assert len(bars) <= MAX_BARS
    assert sum(b["count"] for b in bars) == len(values)
    # A value goes to the bar of the grid point at or above it: never to a bar left of its own.
    widest = max(np.diff([0, *cumulative]))
    running = 0
    for bar in bars:
        running += bar["count"]
        truth = int((values <= bar["high"] + 1e-9).sum())
        assert truth - widest <= running <= truth


def test_ui_command_acts_as_the_store_and_redirects_the_root(store: FeatureStore) -> None:
    app = create_app(store, local_ui=True)
    with Server(store, app=app) as local:
        response = httpx.get(local.url + "/", timeout=30)
        assert response.status_code == 307
        assert response.headers["location"] == "/ui/"
        who = httpx.get(local.url + "/ui/api/whoami", timeout=30).json()
        assert who == {
            "project": store.project,
            "principal": "anonymous",
            "roles": [],
            "local": True,
        }


def test_static_files_are_inside_the_package() -> None:
    import api.ui

    static = Path(api.ui.__file__).parent / "static"
    scripts = {"app.js", "quality.js", "lineage.js"}
    assert {p.name for p in static.iterdir()} >= {"index.html", "style.css", *scripts}
    html = (static / "index.html").read_text()
    assert all(f'src="/ui/static/{name}"' in html for name in scripts)
    text = html + "".join((static / name).read_text() for name in sorted(scripts))
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text  # nothing from a CDN
