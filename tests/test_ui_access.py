"""The UI obeys the access policies: a principal denied reading a pii feature sees neither it nor
its statistics anywhere, in the pages (their text, every page clicked through with the token
typed into the page) and in the JSON they call; an admin sees it (the control), a principal
denied a view gets a 403 for it, and a request without a token is refused (401).

The repository is ``tests/access_repo.py``'s (``driver_stats`` with a pii ``ssn`` feature that
the analyst ``bob`` may not read), with statistics, drift, validations, a saved dataset holding
``ssn`` and a second version of the view recorded by the admin; and two on-demand views, over
``ssn`` (two versions of its code) and over ``conv_rate``: bob may describe both, read only the
second; ``mallory`` may not describe the first nor read the second.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from access_repo import (
    CONV_PERCENT,
    DRIVER,
    DRIVER_STATS,
    NO_PERCENT,
    NOW,
    ROOT,
    SSN_DIGITS,
    as_,
    make_repo,
)
from api_server import Server
from browser import chromium, screenshot, wait_for, wait_page

from api.ui.visibility import Visibility
from featurestore import (
    FeatureStore,
    FeatureView,
    Field,
    Policy,
    Resource,
    on_demand_feature_view,
)
from featurestore.browse import READ_ACTIONS
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import AccessDeniedError
from featurestore.governance.access import definition_target
from featurestore.types import Int64

pytestmark = pytest.mark.slow

PII = re.compile(r"\bssn\b")
ENDPOINTS = [
    "whoami",
    "catalog?limit=200",
    "catalog?q=ssn",
    "catalog?tag=pii%3Dtrue",
    "catalog?kind=on_demand_feature_view",
    "views/driver_stats",
    "views/driver_stats/versions",
    "views/driver_stats/versions/1",
    "views/driver_stats/versions/2",
    "views/driver_stats/readers",
    "views/driver_stats/statistics?limit=50",
    "views/driver_stats/drift?limit=50",
    "views/driver_stats/validations?limit=50",
    "on-demand/ssn_digits",
    "on-demand/ssn_digits/versions",
    "on-demand/ssn_digits/versions/1",
    "on-demand/ssn_digits/versions/2",
    "on-demand/conv_percent",
    "lineage",
    "lineage?focus=driver_stats",
    "lineage?focus=ssn_digits&kind=on_demand_feature_view",
    "datasets",
]
#: Where the admin (the control) sees no ``ssn`` either: nothing there names it (the lineage of
#: every view draws no edge detail naming it; the versions' change lines are about the TTL and
#: an on-demand view's code change, which a change line only names as a heading).
NOT_NAMING = {
    "whoami",
    "lineage",
    "lineage?focus=driver_stats",
    "catalog?kind=on_demand_feature_view",
    "views/driver_stats/versions",
    "on-demand/ssn_digits/versions",
    "on-demand/conv_percent",
}
#: Mallory may describe neither ``customer_profile`` nor ``ssn_digits``.
MALLORY_NO_DIGITS = Policy(
    name="mallory-no-digits",
    effect="deny",
    principals=["mallory"],
    actions=["*"],
    resources=[Resource(kind="on_demand_feature_view", name="ssn_digits")],
)


def ssn_digits_v2() -> OnDemandFeatureView:
    """A second version of ``ssn_digits``: new code, still reading ``ssn``."""

    @on_demand_feature_view(
        sources=[DRIVER_STATS[["ssn"]]], schema=[Field(name="ssn_len", dtype=Int64)], mode="python"
    )
    def ssn_digits(row: dict[str, Any]) -> dict[str, Any]:
        return {"ssn_len": None if row["ssn"] is None else len(row["ssn"].strip())}

    return ssn_digits


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
        # A second version, so the page has a diff of two definitions that both hold ssn; and
        # on-demand views over ssn (two versions: a code diff) and over conv_rate.
        changed = copy.copy(DRIVER_STATS)
        changed.ttl = timedelta(hours=12)
        admin.apply([changed, SSN_DIGITS, CONV_PERCENT, NO_PERCENT, MALLORY_NO_DIGITS])
        admin.apply([ssn_digits_v2()])
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
        if path not in NOT_NAMING:
            assert PII.search(admin.text), path  # the control: the admin does see it
    page = get(server, "views/driver_stats/statistics?limit=50", tokens["analyst"]).json()
    assert page["statistics"]
    for stats in page["statistics"]:
        assert {c["name"] for c in stats["columns"]} == {"conv_rate", "trips"}
    view = get(server, "views/driver_stats", tokens["analyst"]).json()
    assert [f["name"] for f in view["view"]["spec"]["features"]] == ["conv_rate", "trips"]
    assert [v["version"] for v in view["versions"]["versions"]] == [2, 1]
    for version in (1, 2):
        old = get(server, f"views/driver_stats/versions/{version}", tokens["analyst"]).json()
        assert [f["name"] for f in old["definition"]["spec"]["features"]] == ["conv_rate", "trips"]


def test_on_demand_pages_follow_describe_and_the_inputs_rights(
    server: Server, repo: tuple[Path, dict[str, str]]
) -> None:
    """Schema and code follow ``describe`` on the on-demand view; code naming a hidden input is
    withheld; values are shown as readable exactly when a retrieval would be allowed."""
    root, tokens = repo
    frame = pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]})
    for who in ("admin", "analyst", "mallory"):
        with as_(root, tokens[who]) as store:
            for name in ("ssn_digits", "conv_percent"):
                response = get(server, f"on-demand/{name}", tokens[who])
                view = store.registry.get(store.project, "on_demand_feature_view", name)
                may_describe = store.guard.allowed(
                    store.principal, "describe", [definition_target(store.project, view)]
                )
                if not may_describe:
                    assert response.status_code == 403, (who, name)
                    continue
                assert response.status_code == 200, (who, name, response.text)
                page = response.json()
                try:  # the oracle: the retrieval itself
                    reference = f"{name}:{view.feature_names[0]}"
                    store.get_historical_features(frame, [reference]).to_pandas()
                    retrievable = True
                except AccessDeniedError:
                    retrievable = False
                assert page["values_readable"] is retrievable, (who, name)
                shown = page["definition"]
                assert [f["name"] for f in shown["features"]] == view.feature_names
                hides_input = who != "admin" and name == "ssn_digits"
                assert shown["code_withheld"] is hides_input, (who, name)
                if not hides_input:
                    assert shown["code"]["source"] == view.code.source
    expected = {
        "admin": (True, True),
        "analyst": (False, True),  # ssn is pii
        "mallory": (None, False),  # may not describe ssn_digits; may not read conv_percent
    }
    for who, (digits, percent) in expected.items():
        pages = {
            n: get(server, f"on-demand/{n}", tokens[who]) for n in ("ssn_digits", "conv_percent")
        }
        if digits is None:
            assert pages["ssn_digits"].status_code == 403
        else:
            assert pages["ssn_digits"].json()["values_readable"] is digits
        assert pages["conv_percent"].json()["values_readable"] is percent
    catalog = get(server, "catalog?limit=200", tokens["mallory"]).json()["items"]
    assert not any("ssn_digits" in i["name"] for i in catalog)
    assert {i["name"] for i in catalog if i["kind"] == "on_demand_feature_view"} == {"conv_percent"}
    assert not any(i["name"] == "conv_percent:conv_pct" for i in catalog)  # not readable
    lineage = get(server, "lineage", tokens["mallory"]).text
    assert "ssn_digits" not in lineage
    assert "conv_percent" in lineage
    for path in ("on-demand/ssn_digits/versions", "on-demand/ssn_digits/versions/1"):
        assert get(server, path, tokens["mallory"]).status_code == 403
    focus = "lineage?focus=ssn_digits&kind=on_demand_feature_view"
    assert get(server, focus, tokens["mallory"]).status_code == 403
    with as_(root, tokens["admin"]) as admin:
        denials = admin.audit_log(principal="mallory", action="describe")
    assert any("ssn_digits" in r.resource and r.outcome == "denied" for r in denials)


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
            assert PII.search(texts["on-demand"])  # its code reads row['ssn']


def visit_every_page(driver: Any, server: Server, who: str) -> dict[str, str]:
    """Each page's text (and its HTML, where names could hide in attributes) once drawn."""
    texts: dict[str, str] = {}
    pages = {
        "catalog": ("catalog", "#results"),
        "search": ("catalog?q=ssn", "#results"),
        "facet": ("catalog?tag=pii%3Dtrue", "#results"),
        "view": ("view/driver_stats", "#validations-table"),
        "on-demand": ("on-demand/ssn_digits", "#od-graph #graph"),
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
        if name == "on-demand":
            wait_for(driver, '.diff-btn[data-version="2"]').click()
            wait_for(driver, "#diff-table")
            wait_for(driver, '#od-graph .node[data-id^="on_demand_feature_view"]').click()
            wait_for(driver, "#node-edges")
            withheld = driver.find_elements("css selector", ".code-withheld")
            assert bool(withheld) is (who == "analyst"), who
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


def test_on_demand_browsing_through_the_facade(repo: tuple[Path, dict[str, str]]) -> None:
    """The facade's read paths the pages use refuse (and audit) what a principal may not
    describe, and list only what they may."""
    root, tokens = repo
    with as_(root, tokens["mallory"]) as mallory:
        assert [v.name for v in mallory.list_on_demand_feature_views()] == ["conv_percent"]
        with pytest.raises(AccessDeniedError, match="ssn_digits"):
            mallory.get_on_demand_feature_view("ssn_digits", 1)
        with pytest.raises(AccessDeniedError, match="ssn_digits"):
            mallory.history_page("ssn_digits", "on_demand_feature_view")
        percent = mallory.get_on_demand_feature_view("conv_percent")
        assert not mallory.on_demand_readable(percent)
    with as_(root, tokens["analyst"]) as bob:
        assert [v.name for v in bob.list_on_demand_feature_views()] == [
            "conv_percent",
            "ssn_digits",
        ]
        digits = bob.get_on_demand_feature_view("ssn_digits", 1)
        assert not bob.on_demand_readable(digits)
        page, total = bob.history_page("ssn_digits", "on_demand_feature_view", limit=1)
        assert total == 2
        assert [e.version for e in page] == [2]


def settle(store: FeatureStore) -> None:
    """Until the store's access controller has seen the registry's latest state (it looks at
    most once a second, as for every request the facade answers)."""
    token = store.registry.state_token(store.project)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        generation = store.guard.access.generation
        store.guard.access.policies()
        if store.guard.access.generation != generation:
            return
        time.sleep(0.05)
    raise AssertionError(f"the access controller never reloaded (registry state {token})")


def test_hidden_features_follow_every_registry_change(tmp_path: Path) -> None:
    """What a page hides is worked out once per registry state (every stored version read in
    one go) and kept until the registry changes: a tag removed, a policy added, and the very
    next page shows the new answer, which is the policies' own decision per feature."""
    root, tokens = make_repo(tmp_path)
    with FeatureStore(root, principal=ROOT) as admin:
        who = admin.guard.authenticate(tokens["analyst"])
        reads: list[str] = []
        real = admin.registry.get_versions

        def counted(project: str, kind: str, name: str) -> Any:
            reads.append(name)
            return real(project, kind, name)

        admin.registry.get_versions = counted  # type: ignore[method-assign]

        def hidden() -> frozenset[str]:
            return Visibility(admin, who).hidden("driver_stats")

        def oracle() -> frozenset[str]:
            def allowed(action: str, feature: str) -> bool:
                resource = f"feature:driver_stats:{feature}"
                return all(d.allowed for d in admin.check_access(who, action, resource))

            versions = real(admin.project, "feature_view", "driver_stats").values()
            names = {f for v in versions for f in v.feature_names}
            return frozenset(
                f
                for f in names
                if not (allowed("describe", f) and any(allowed(a, f) for a in READ_ACTIONS))
            )

        assert hidden() == oracle() == {"ssn"}
        assert hidden() == {"ssn"}
        assert reads == ["driver_stats"]  # the second page read no version
        untagged = FeatureView(
            name="driver_stats",
            entities=[DRIVER],
            ttl=timedelta(hours=12),
            schema=[Field(name=f.name, dtype=f.dtype) for f in DRIVER_STATS.features],
            source=DRIVER_STATS.source,
        )
        admin.apply([untagged])
        settle(admin)
        assert hidden() == oracle() == frozenset()  # the current tags decide for every version
        no_trips = Policy(
            name="no-trips",
            effect="deny",
            roles=["analyst"],
            actions=["read_offline", "read_online"],
            resources=[Resource(kind="feature", name="driver_stats:trips")],
        )
        admin.apply([no_trips])
        settle(admin)
        assert hidden() == oracle() == {"trips"}
        assert len(reads) == 3
