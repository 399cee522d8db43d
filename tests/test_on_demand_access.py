"""Access through on-demand views: an input the caller may not read stays unreadable.

In the access repository analysts may read everything but features tagged ``pii``. An on-demand
view over ``driver_stats:ssn`` (pii) is refused to them offline, online and over REST, while one
over ``conv_rate`` is served; a deny on the on-demand view itself holds too. Lineage records the
inputs.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest
from access_repo import CONV_PERCENT, NO_PERCENT, NOW, ROOT, SSN_DIGITS, as_, make_repo
from api_server import Server

from featurestore import FeatureStore
from featurestore.errors import AccessDeniedError

FRAME = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [NOW, NOW]})
ROWS = [{"driver_id": 1}, {"driver_id": 2}]


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root, tokens = make_repo(tmp_path)
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply([SSN_DIGITS, CONV_PERCENT, NO_PERCENT])
    return root, tokens


def test_denied_inputs_cannot_be_read_through_an_on_demand_view(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    with as_(root, tokens["analyst"]) as bob:
        with pytest.raises(AccessDeniedError, match="ssn"):
            bob.get_historical_features(FRAME, ["ssn_digits:ssn_len"])
        with pytest.raises(AccessDeniedError, match="ssn"):
            bob.get_online_features(["ssn_digits:ssn_len"], entity_rows=ROWS)
        allowed = bob.get_historical_features(FRAME, ["conv_percent:conv_pct"]).to_pandas()
        assert allowed["conv_pct"].tolist() == pytest.approx([50.0, 25.0])
        online = bob.get_online_features(["conv_percent:conv_pct"], entity_rows=ROWS).to_dict()
        assert online["conv_pct"] == pytest.approx([50.0, 25.0])
    with as_(root, tokens["mallory"]) as mallory:
        with pytest.raises(AccessDeniedError, match="conv_percent"):
            mallory.get_historical_features(FRAME, ["conv_percent:conv_pct"])
        with pytest.raises(AccessDeniedError, match="conv_percent"):
            mallory.get_online_features(["conv_percent:conv_pct"], entity_rows=ROWS)
    with as_(root, tokens["admin"]) as alice:
        assert alice.get_online_features(["ssn_digits:ssn_len"], entity_rows=ROWS).to_dict()[
            "ssn_len"
        ] == [3, 3]
        upstream = alice.trace_lineage("ssn_digits", "upstream")
        assert "feature_view:driver_stats@1" in {n.id for n in upstream.nodes}


def test_denied_inputs_over_rest(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    with FeatureStore(root, principal=ROOT) as store, Server(store) as server:

        def ask(token: str, feature: str) -> httpx.Response:
            return httpx.post(
                f"{server.url}/get-online-features",
                headers={"Authorization": f"Bearer {token}"},
                json={"features": [feature], "entities": {"driver_id": [1, 2]}},
                timeout=30,
            )

        denied = ask(tokens["analyst"], "ssn_digits:ssn_len")
        assert denied.status_code == 403, denied.text
        assert "ssn" in denied.json()["error"]["message"]
        assert ask(tokens["mallory"], "conv_percent:conv_pct").status_code == 403
        served = ask(tokens["analyst"], "conv_percent:conv_pct")
        assert served.status_code == 200, served.text
        assert served.json()["results"][-1]["values"] == pytest.approx([50.0, 25.0])
