"""The hand parsers of api/schemas.py and the schemas OpenAPI documents for them accept the
same request bodies (property test). The one rule JSON Schema cannot state, entity lists of one
length, is the only allowed difference, and the parser names it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from api.errors import ApiError
from api.schemas import (
    ONLINE_REQUEST_SCHEMA,
    PUSH_REQUEST_SCHEMA,
    parse_online_request,
    parse_push_request,
)

NO_LIMIT = 10**9
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what orjson reads
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
COLUMNS = st.dictionaries(
    st.sampled_from(["driver_id", "customer_id", "x"]),
    st.lists(SCALARS, max_size=3) | JSON,
    max_size=3,
)
ONLINE = st.fixed_dictionaries(
    {},
    optional={
        "entities": COLUMNS | JSON,
        "features": st.lists(st.sampled_from(["v:f", "w:g", ""]), max_size=3) | JSON,
        "feature_service": st.sampled_from(["svc", ""]) | JSON,
        "full_feature_names": st.booleans() | JSON,
        "extra": JSON,
    },
)
PUSH = st.fixed_dictionaries(
    {},
    optional={
        "push_source_name": st.sampled_from(["src", ""]) | JSON,
        "df": COLUMNS | JSON,
        "to": st.sampled_from(["online", "OFFLINE", "Online_And_Offline", "x", ""]) | JSON,
        "allow_registry_cache": JSON,
        "transform_on_write": JSON,
    },
)
PROPERTY = settings(max_examples=600, deadline=None)


def parser_accepts(parse: Any, body: Any) -> tuple[bool, str]:
    try:
        parse(orjson.dumps(body), NO_LIMIT)
    except ApiError as exc:
        error = exc
    else:
        return True, ""
    assert error.status in (400, 422), error.message
    return False, error.message


@PROPERTY
@given(body=ONLINE | JSON)
def test_online_parser_and_schema_agree(body: Any) -> None:
    by_schema = Draft202012Validator(ONLINE_REQUEST_SCHEMA).is_valid(body)
    by_parser, message = parser_accepts(parse_online_request, body)
    if by_schema and not by_parser:
        assert message.startswith("entities lists differ in length"), (body, message)
    else:
        assert by_schema == by_parser, (body, message)


@PROPERTY
@given(body=PUSH | JSON)
def test_push_parser_and_schema_agree(body: Any) -> None:
    by_schema = Draft202012Validator(PUSH_REQUEST_SCHEMA).is_valid(body)
    by_parser, message = parser_accepts(parse_push_request, body)
    assert by_schema == by_parser, (body, message)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"features": ["v:f"], "entities": {}}, True),
        ({"feature_service": "svc", "entities": {}}, True),
        ({"features": ["v:f"], "feature_service": None, "entities": {}}, True),
        ({"features": ["v:f"], "feature_service": "svc", "entities": {}}, False),
        ({"entities": {}}, False),
        ({"features": [], "entities": {}}, False),
    ],
)
def test_features_xor_feature_service(body: dict[str, Any], valid: bool) -> None:
    assert Draft202012Validator(ONLINE_REQUEST_SCHEMA).is_valid(body) is valid
    assert parser_accepts(parse_online_request, body)[0] is valid
