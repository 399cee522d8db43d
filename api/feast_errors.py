"""Error answers in Feast's shape, so that Feast's own client raises its own exception types.

Feast's Python client (its ``remote`` online store) reads an error answer with
``FeastError.from_error_detail(response.json())``: the body must be a JSON *string* that holds
``{"module": "feast.errors", "class": "FeatureViewNotFoundException", "message": "..."}``; the
client imports that class and raises it with the message. Our usual body (an object) makes it log
"Invalid error detail" and raise a bare ``RuntimeError`` instead.

So on the Feast-compatible paths (:data:`FEAST_PATHS`), a request sent by Feast's client gets
Feast's shape; everyone else, and every ``/v1`` path, keeps our structured
``{"error": {"type", "message"}}``. Feast's client is recognised by its HTTP library's
User-Agent (``python-requests/...``): it sets no header of its own. The status code is ours in
both shapes. Our errors map to Feast's types by what they say (:func:`feast_error_class`):

=================================================  =========================================
unknown feature view / version / service / entity  ``FeatureViewNotFoundException``,
/ push source                                      ``FeatureViewVersionNotFound``, ...
unknown feature of a known view, other not-found   ``FeastObjectNotFoundException``
missing or unknown token, policy denial            ``FeastPermissionError``
rows that do not fit the view or source            ``DataFrameSerializationError``
anything else (bad request shape, limits, 5xx)     ``FeastError``
=================================================  =========================================
"""

from __future__ import annotations

import json

import orjson

from api.auth import Unauthorized
from featurestore.errors import (
    AccessDeniedError,
    AuthenticationError,
    FeatureReferenceError,
    ObjectNotFoundError,
    PushError,
)

__all__ = ["FEAST_PATHS", "feast_error_class", "feast_error_content", "speaks_feast"]

#: The paths Feast's client calls; only there can an error answer take Feast's shape.
FEAST_PATHS = frozenset(
    {
        "/get-online-features",
        "/push",
        "/write-to-online-store",
        "/materialize",
        "/materialize-incremental",
    }
)

# The User-Agent prefix of the ``requests`` library, through which Feast's client calls.
_FEAST_CLIENT_AGENT = "python-requests/"

_FEAST_MODULE = "feast.errors"

# The kind of a missing object -> Feast's exception class.
_NOT_FOUND = {
    "feature_view": "FeatureViewNotFoundException",
    "feature_service": "FeatureServiceNotFoundException",
    "entity": "EntityNotFoundException",
    "push_source": "PushSourceNotFoundException",
    "saved_dataset": "SavedDatasetNotFound",
}


def speaks_feast(path: str, user_agent: str | None) -> bool:
    """Whether an error answer to a request for ``path`` takes Feast's shape."""
    return (
        path in FEAST_PATHS
        and user_agent is not None
        and user_agent.startswith(_FEAST_CLIENT_AGENT)
    )


def feast_error_class(exc: BaseException) -> str:
    """The name of the class in ``feast.errors`` that Feast's client should raise for ``exc``."""
    if isinstance(exc, Unauthorized | AuthenticationError | AccessDeniedError):
        return "FeastPermissionError"
    missing: str | None = None
    version: int | None = None
    if isinstance(exc, ObjectNotFoundError):
        missing, version = exc.kind or "", exc.version
    elif isinstance(exc, FeatureReferenceError):
        missing, version = exc.missing, exc.version
    if missing is not None:
        if missing == "feature_view" and version is not None:
            return "FeatureViewVersionNotFound"
        return _NOT_FOUND.get(missing, "FeastObjectNotFoundException")
    if isinstance(exc, PushError):
        return "DataFrameSerializationError"
    return "FeastError"


def feast_error_content(exc: BaseException, message: str) -> bytes:
    """The response body Feast's client turns back into its exception: a JSON string holding
    the module, class and ``message`` (what our own body would say)."""
    detail = {"module": _FEAST_MODULE, "class": feast_error_class(exc), "message": message}
    return orjson.dumps(json.dumps(detail))
