"""``GET /v1/drift/{view}``: the drift report ``featurestore drift`` prints, as JSON; and
``GET /v1/validations/{view}``: the view's recorded validations.

Drift query parameters: ``current_window=C..D`` (required), and either ``reference=DATASET``
(a saved training dataset) or ``reference_window=A..B``; ``psi``, ``ks``, ``chi2_p_value`` and
``null_rate`` override the configured thresholds. Windows are ``START..END`` with ISO-8601 bounds (either may
be empty). The report is recorded like the CLI's; a bad window or a window without rows is a
422, an unknown view or dataset a 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from api import deps
from api.errors import ApiError
from api.responses import OrjsonResponse
from featurestore.quality.windows import parse_window

__all__ = ["router"]

router = APIRouter(prefix="/v1")


@router.get("/drift/{view}", response_class=OrjsonResponse)
def drift(
    view: str,
    request: Request,
    principal: deps.Caller,
    current_window: str = Query(..., description="The window to check: START..END"),
    reference: str | None = Query(None, description="A saved training dataset"),
    reference_window: str | None = Query(None, description="Or a reference window: START..END"),
    psi: float | None = Query(None, ge=0, description="PSI threshold (0: off)"),
    ks: float | None = Query(None, ge=0, le=1, description="KS threshold (0: off)"),
    chi2_p_value: float | None = Query(None, ge=0, le=1, description="Chi-square p-value (0: off)"),
    null_rate: float | None = Query(None, ge=0, le=1, description="Null-rate change (0: off)"),
) -> dict[str, Any]:
    """Per feature PSI, KS (numeric) or chi-square (categorical), and whether it drifted."""
    if (reference is None) == (reference_window is None):
        raise ApiError(
            422, "ValidationError", "pass either reference=DATASET or reference_window=A..B"
        )
    store = deps.store(request)
    thresholds = store.quality.thresholds_with(
        psi=psi, ks=ks, chi2_p_value=chi2_p_value, null_rate=null_rate
    )
    outcome = store.drift(
        view,
        current_window=parse_window(current_window),
        reference_dataset=reference,
        reference_window=None if reference_window is None else parse_window(reference_window),
        thresholds=thresholds,
        principal=principal,
    )
    return outcome.to_dict()


@router.get("/validations/{view}", response_class=OrjsonResponse)
def validations(
    view: str,
    request: Request,
    principal: deps.Caller,
    limit: int = Query(20, ge=1, le=1000, description="The newest N results"),
    failed_only: bool = Query(False, description="Only failed validations"),
) -> dict[str, Any]:
    """The view's recorded validations (materialize, push, on demand), oldest first."""
    results = deps.store(request).validation_history(
        view, limit=limit, failed_only=failed_only, principal=principal
    )
    return {"view": view, "validations": [r.to_dict() for r in results]}
