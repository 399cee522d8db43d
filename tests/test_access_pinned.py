"""A pinned version does not escape a later deny: the current governance metadata decides.

Version 2 of ``driver_stats`` tags ``trips`` as ``pii`` (with a TTL change, so it is a new
version); the analysts' ``no-pii`` deny then covers ``driver_stats@1:trips`` as well, through
the SDK offline and online and over REST, while ``driver_stats@1:conv_rate`` is still served.
Version 2 of ``customer_profile`` is tagged ``restricted``, which analysts may not describe: its
version 1 is hidden from them too, even once the view is deleted.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from access_repo import (
    CUSTOMER,
    CUSTOMER_PROFILE,
    DRIVER,
    DRIVER_STATS,
    LEAKY,
    NOW,
    POLICIES,
    ROOT,
    SAFE,
    as_,
    make_repo,
)
from api_server import Server

from featurestore import FeatureService, FeatureStore, FeatureView, Policy, Resource
from featurestore.errors import AccessDeniedError

ENTITY_DF = pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]})
ROWS = [{"driver_id": 1}]
RESTRICTED = Policy(
    name="restricted",
    effect="deny",
    roles=["analyst"],
    actions=["describe"],
    resources=[Resource(kind="feature_view", tags={"restricted": "true"})],
)


def version_2(view: FeatureView, **tags: dict[str, str]) -> FeatureView:
    """``view`` with a longer TTL (a new version) and ``tags`` on the view or its features
    (``_view`` for the view's own)."""
    data = view.to_dict()
    data["spec"]["ttl_seconds"] = (view.ttl or timedelta(0)).total_seconds() + 3600
    for name, added in tags.items():
        if name == "_view":
            data["meta"]["tags"] = {**data["meta"]["tags"], **added}
        else:
            fields = data["meta"]["fields"]
            fields[name] = {**fields[name], "tags": {**fields[name]["tags"], **added}}
    return FeatureView.from_dict(data)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root, tokens = make_repo(tmp_path)
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply(
            [
                version_2(DRIVER_STATS, trips={"pii": "true"}),
                version_2(CUSTOMER_PROFILE, _view={"restricted": "true"}),
                RESTRICTED,
            ]
        )
        assert admin.registry.current_version(admin.project, "feature_view", "driver_stats") == 2
    return root, tokens


def test_sdk_reads_of_an_old_version_follow_the_current_tags(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    with as_(root, tokens["analyst"]) as analyst:
        with pytest.raises(AccessDeniedError, match="'no-pii' denies read_offline"):
            analyst.get_historical_features(ENTITY_DF, ["driver_stats@1:trips"])
        with pytest.raises(AccessDeniedError, match="'no-pii' denies read_online"):
            analyst.get_online_features(["driver_stats@1:trips"], entity_rows=ROWS)
        # The rest of the old version is still served.
        online = analyst.get_online_features(["driver_stats@1:conv_rate"], entity_rows=ROWS)
        assert online.to_dict()["conv_rate"] == [0.5]
        offline = analyst.get_historical_features(ENTITY_DF, ["driver_stats@1:conv_rate"])
        assert offline.to_pandas()["conv_rate"].tolist() == [0.5]
        # A service built in code from the old version reads the current one, and is refused.
        old = analyst.get_feature_view("driver_stats", version=1)
        assert old.feature("trips").tags == {}
        pinned_service = FeatureService(name="safe", features=[old[["conv_rate", "trips"]]])
        with pytest.raises(AccessDeniedError, match="feature:driver_stats:trips"):
            analyst.get_historical_features(ENTITY_DF, pinned_service)
        with pytest.raises(AccessDeniedError, match="feature:driver_stats:trips"):
            analyst.get_online_features(pinned_service, entity_rows=ROWS)
        with pytest.raises(AccessDeniedError, match="'restricted' denies describe"):
            analyst.get_feature_view("customer_profile", version=1)
    with as_(root, tokens["admin"]) as admin:
        # Admins still read every version.
        assert admin.get_online_features(["driver_stats@1:trips"], entity_rows=ROWS).to_dict()[
            "trips"
        ] == [10]
        denied = [r.resource for r in admin.audit_log(principal="bob") if r.outcome == "denied"]
    assert denied.count("feature:driver_stats:trips") == 4
    assert "feature_view:customer_profile" in denied


def test_a_deleted_views_old_versions_keep_its_last_metadata(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    with FeatureStore(root, principal=ROOT) as admin:
        remaining = [DRIVER, CUSTOMER, version_2(DRIVER_STATS, trips={"pii": "true"})]
        admin.apply([*remaining, LEAKY, SAFE, *POLICIES, RESTRICTED], delete_missing=True)
        assert [v.name for v in admin.list_feature_views()] == ["driver_stats"]
    with (
        as_(root, tokens["analyst"]) as analyst,
        pytest.raises(AccessDeniedError, match="'restricted' denies describe"),
    ):
        analyst.get_feature_view("customer_profile", version=1)


def test_rest_lookups_of_an_old_version_follow_the_current_tags(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    store = FeatureStore(root)
    try:
        with Server(store) as server:

            def lookup(reference: str, token: str) -> httpx.Response:
                return httpx.post(
                    f"{server.url}/get-online-features",
                    json={"features": [reference], "entities": {"driver_id": [1]}},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )

            refused = lookup("driver_stats@1:trips", tokens["analyst"])
            assert refused.status_code == 403, refused.text
            assert "no-pii" in refused.json()["error"]["message"]
            served = lookup("driver_stats@1:conv_rate", tokens["analyst"])
            assert served.status_code == 200, served.text
            assert served.json()["results"][1]["values"] == [0.5]
            assert lookup("driver_stats@1:trips", tokens["admin"]).status_code == 200
    finally:
        store.close()
