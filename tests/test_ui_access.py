"""The UI obeys the access policies: a principal denied reading a pii feature sees neither it nor
its statistics anywhere, in the pages (their text, every page clicked through with the token
typed into the page) and in the JSON they call; an admin sees it (the control), a principal
denied a view gets a 403 for it, and a request without a token is refused (401).

The repository is ``tests/access_repo.py``'s (``driver_stats`` with a pii ``ssn`` feature that
the analyst ``bob`` may not read), with statistics, drift, validations, a saved dataset holding
``ssn`` and a second version of the view recorded by the admin.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from access_repo import DRIVER_STATS, NOW, ROOT, make_repo
from api_server import Server
from browser import chromium, screenshot, wait_for, wait_page

from featurestore import FeatureStore

pytestmark = pytest.mark.slow

PII = re.compile(r"\bssn\b")
ENDPOINTS = [
    "whoami",
    "catalog?limit=200",
    "catalog?q=ssn",
    "catalog?tag=pii%3Dtrue",
    "views/driver_stats",
    "views/driver_stats/statistics?limit=50",
    "views/driver_stats/drift?limit=50",
    "views/driver_stats/validations?limit=50",
    "lineage",
    "lineage?focus=driver_stats",
    "datasets",
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root, tokens = make_repo(tmp_path_factory.mktemp("ui-access"))
    with FeatureStore(root, principal=ROOT) as admin:
        window = (NOW - timedelta(days=1), NOW)
        admin.statistics("driver_stats", *window)
        admin.validate("driver_stats", *window)
        admin.drift("driver_stats", current_window=window, reference_window=window)
        entities = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [NOW, NOW]})
        job = admin.get_historical_features(
            entities, ["driver_stats:conv_rate", "driver_stats:ssn"]
        )
        job.save_dataset("training_set")
        # A second version, so the page has a diff of two definitions that both hold ssn.
        changed = copy.copy(DRIVER_STATS)
        changed.ttl = timedelta(hours=12)
        admin.apply([changed])
    return root, tokens


@pytest.fixture(scope="module")
def server(repo: tuple[Path, dict[str, str]]) -> Iterator[Server]:
    with FeatureStore(repo[0]) as store, Server(store) as running:
        yield running


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def get(server: Server, path: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.url}/ui/api/{path}", headers=headers, timeout=30)


def test_json_endpoints_never_name_the_feature(
    server: Server, repo: tuple[Path, dict[str, str]]
) -> None:
    tokens = repo[1]
    for path in ENDPOINTS:
        admin = get(server, path, tokens["admin"])
        analyst = get(server, path, tokens["analyst"])
        assert analyst.status_code == 200, (path, analyst.text)
        assert admin.status_code == 200, (path, admin.text)
        assert not PII.search(analyst.text), (path, analyst.text)
        if path not in ("whoami", "lineage", "lineage?focus=driver_stats"):
            assert PII.search(admin.text), path  # the control: the admin does see it
    page = get(server, "views/driver_stats/statistics?limit=50", tokens["analyst"]).json()
    assert page["statistics"]
    for stats in page["statistics"]:
        assert {c["name"] for c in stats["columns"]} == {"conv_rate", "trips"}
    view = get(server, "views/driver_stats", tokens["analyst"]).json()
    assert [f["name"] for f in view["view"]["spec"]["features"]] == ["conv_rate", "trips"]
    assert len(view["versions"]) == 2
    assert all(v["definition"] is not None for v in view["versions"])


def test_denied_and_anonymous_callers(server: Server, repo: tuple[Path, dict[str, str]]) -> None:
    tokens = repo[1]
    assert get(server, "views/customer_profile", tokens["mallory"]).status_code == 403
    assert get(server, "views/customer_profile", tokens["analyst"]).status_code == 200
    catalog = get(server, "catalog?limit=200", tokens["mallory"]).json()
    assert not any("customer_profile" in i["name"] for i in catalog["items"])
    lineage = get(server, "lineage", tokens["mallory"])
    assert lineage.status_code == 200
    assert "customer_profile" not in lineage.text
    assert "customer_profile" in get(server, "lineage", tokens["analyst"]).text
    assert get(server, "lineage?focus=customer_profile", tokens["mallory"]).status_code == 403
    for path in ENDPOINTS:
        response = get(server, path, None)
        assert response.status_code == 401, path
        assert "error" in response.json()
    audit = get(server, "audit", tokens["analyst"])
    assert audit.status_code == 403
    assert "admin" in audit.json()["error"]["message"]
    assert get(server, "audit", tokens["admin"]).status_code == 200


def test_pages_never_show_the_feature(
    driver: Any, server: Server, repo: tuple[Path, dict[str, str]]
) -> None:
    tokens = repo[1]
    driver.get(f"{server.url}/ui/")
    wait_page(driver, "catalog")  # refused without a token: the page says so
    assert "401" in driver.find_element("css selector", "#page").text
    for who in ("analyst", "admin"):
        driver.execute_script("sessionStorage.clear()")
        token = driver.find_element("css selector", "#token")
        token.send_keys(tokens[who])
        driver.find_element("css selector", "#token-save").click()
        texts = visit_every_page(driver, server, who)
        for name, text in texts.items():
            if who == "analyst":
                assert not PII.search(text), (name, text)
        if who == "admin":
            assert PII.search(texts["view"])
            assert PII.search(texts["datasets"])


def visit_every_page(driver: Any, server: Server, who: str) -> dict[str, str]:
    """Each page's text (and its HTML, where names could hide in attributes) once drawn."""
    texts: dict[str, str] = {}
    pages = {
        "catalog": ("catalog", "#results"),
        "search": ("catalog?q=ssn", "#results"),
        "facet": ("catalog?tag=pii%3Dtrue", "#results"),
        "view": ("view/driver_stats", "#validations-table"),
        "lineage": ("lineage", "#graph"),
        "datasets": ("datasets", "#datasets"),
        "audit": ("audit", "#page"),
    }
    for name, (fragment, ready) in pages.items():
        driver.get(f"{server.url}/ui/#/{fragment}")
        wait_page(driver, fragment.split("/")[0].split("?")[0])
        wait_for(driver, ready)
        if name == "view":
            wait_for(driver, "#statistics .stat")
            wait_for(driver, "#drift #drift-table")
            wait_for(driver, '.diff-btn[data-version="2"]').click()
            wait_for(driver, "#diff-table")
            for details in driver.find_elements("css selector", "#validations-table details"):
                details.click()
        if name == "lineage":
            wait_for(driver, '#graph .node[data-id^="feature_view:driver_stats"]').click()
            wait_for(driver, "#node-edges")
        # What the reader typed (a search for "ssn") is not something the page shows them.
        driver.execute_script(
            "for (const i of document.querySelectorAll('input')) "
            "{ i.removeAttribute('value'); i.value = ''; }"
        )
        texts[name] = driver.find_element("tag name", "body").text + driver.page_source
        screenshot(driver, f"access-{who}-{name}")
    return texts


def test_visible_features_agree_with_the_access_decisions(
    repo: tuple[Path, dict[str, str]],
) -> None:
    """The facade's filter against the policies' own decisions, per principal and feature."""
    root, tokens = repo
    with FeatureStore(root, principal=ROOT) as admin:
        view = admin.get_feature_view("driver_stats")
        for role, token in tokens.items():
            who = admin.guard.authenticate(token)

            def allowed(action: str, feature: str, who: Any = who) -> bool:
                resource = f"feature:driver_stats:{feature}"
                return all(d.allowed for d in admin.check_access(who, action, resource))

            expected = [
                f
                for f in view.feature_names
                if allowed("describe", f)
                and (allowed("read_offline", f) or allowed("read_online", f))
            ]
            assert admin.visible_features(view, principal=who) == expected, role
        assert admin.visible_features(
            view, principal=admin.guard.authenticate(tokens["analyst"])
        ) == [
            "conv_rate",
            "trips",
        ]
