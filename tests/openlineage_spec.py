"""Validating OpenLineage events against the OpenLineage JSON schemas, offline.

No installable package ships the spec's JSON schemas (openlineage-python has none, nor do the
other OpenLineage packages on PyPI), and nothing may be downloaded while tests run. So this module
holds the rules of the schemas the events declare, written out here as JSON Schema under the
spec's own ``$id`` URLs:

* the core spec ``https://openlineage.io/spec/2-0-2/OpenLineage.json`` (BaseEvent, RunEvent,
  Run, Job, datasets, the facet bases) — the version openlineage-python 1.54 emits;
* each facet the store emits, at the version the client stamps in ``_schemaURL``.

The official files (Apache-2.0, https://github.com/OpenLineage/OpenLineage/tree/main/spec) can
replace them: put ``OpenLineage.json`` and the facet files in ``tests/openlineage_spec/`` and
:func:`validator_registry` loads those instead, keyed by their ``$id``.

:func:`validate_event` checks a whole event against the core ``RunEvent`` definition (with
``date-time``, ``uri`` and ``uuid`` formats enforced), then every facet against the schema its
``_schemaURL`` names; a facet the store produced whose schema is unknown here is an error, one the
client added on its own (its ``tags``) is checked against the core facet rules only.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
OFFICIAL_DIR = Path(__file__).parent / "openlineage_spec"
_DEFS = f"{CORE}#/$defs"


def _core() -> dict[str, Any]:
    facet_base = {"allOf": [{"$ref": "#/$defs/BaseFacet"}]}
    deletable = {
        "allOf": [
            {"$ref": "#/$defs/BaseFacet"},
            {"type": "object", "properties": {"_deleted": {"type": "boolean"}}},
        ],
        "type": "object",
    }

    def facets(definition: str) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {"$ref": f"#/$defs/{definition}"}}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": CORE,
        "$defs": {
            "BaseEvent": {
                "type": "object",
                "properties": {
                    "eventTime": {"type": "string", "format": "date-time"},
                    "producer": {"type": "string", "format": "uri"},
                    "schemaURL": {"type": "string", "format": "uri"},
                },
                "required": ["eventTime", "producer", "schemaURL"],
            },
            "RunEvent": {
                "allOf": [
                    {"$ref": "#/$defs/BaseEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "eventType": {
                                "type": "string",
                                "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"],
                            },
                            "run": {"$ref": "#/$defs/Run"},
                            "job": {"$ref": "#/$defs/Job"},
                            "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
                            "outputs": {
                                "type": "array",
                                "items": {"$ref": "#/$defs/OutputDataset"},
                            },
                        },
                        "required": ["run", "job"],
                    },
                ]
            },
            "Run": {
                "type": "object",
                "properties": {
                    "runId": {"type": "string", "format": "uuid"},
                    "facets": facets("RunFacet"),
                },
                "required": ["runId"],
            },
            "RunFacet": {"type": "object", **facet_base},
            "Job": {
                "type": "object",
                "properties": {
                    "namespace": {"type": "string"},
                    "name": {"type": "string"},
                    "facets": facets("JobFacet"),
                },
                "required": ["namespace", "name"],
            },
            "JobFacet": deletable,
            "Dataset": {
                "type": "object",
                "properties": {
                    "namespace": {"type": "string"},
                    "name": {"type": "string"},
                    "facets": facets("DatasetFacet"),
                },
                "required": ["namespace", "name"],
            },
            "InputDataset": {
                "type": "object",
                "allOf": [
                    {"$ref": "#/$defs/Dataset"},
                    {
                        "type": "object",
                        "properties": {"inputFacets": facets("InputDatasetFacet")},
                    },
                ],
            },
            "OutputDataset": {
                "type": "object",
                "allOf": [
                    {"$ref": "#/$defs/Dataset"},
                    {
                        "type": "object",
                        "properties": {"outputFacets": facets("OutputDatasetFacet")},
                    },
                ],
            },
            "DatasetFacet": deletable,
            "InputDatasetFacet": {"type": "object", **facet_base},
            "OutputDatasetFacet": {"type": "object", **facet_base},
            "BaseFacet": {
                "type": "object",
                "properties": {
                    "_producer": {"type": "string", "format": "uri"},
                    "_schemaURL": {"type": "string", "format": "uri"},
                },
                "additionalProperties": True,
                "required": ["_producer", "_schemaURL"],
            },
        },
    }


def _facet(url: str, name: str, base: str, body: dict[str, Any], **defs: Any) -> dict[str, Any]:
    """A facet schema: its definition is the core ``base`` facet plus ``body``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "$defs": {
            name: {"allOf": [{"$ref": f"{_DEFS}/{base}"}, {"type": "object", **body}]},
            **defs,
        },
    }


def _facets() -> list[dict[str, Any]]:
    base = "https://openlineage.io/spec/facets"
    input_field = {
        "type": "object",
        "properties": {
            "namespace": {"type": "string"},
            "name": {"type": "string"},
            "field": {"type": "string"},
            "transformations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "subtype": {"type": "string"},
                        "description": {"type": "string"},
                        "masking": {"type": "boolean"},
                    },
                    "required": ["type"],
                },
            },
        },
        "required": ["namespace", "name", "field"],
    }
    schema_field = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string"},
            "description": {"type": "string"},
            "ordinal_position": {"type": "integer", "minimum": 1},
            "fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaDatasetFacetFields"}},
        },
        "required": ["name"],
    }
    return [
        _facet(
            f"{base}/1-2-0/SchemaDatasetFacet.json",
            "SchemaDatasetFacet",
            "DatasetFacet",
            {
                "properties": {
                    "fields": {
                        "type": "array",
                        "items": {"$ref": "#/$defs/SchemaDatasetFacetFields"},
                    }
                }
            },
            SchemaDatasetFacetFields=schema_field,
        ),
        _facet(
            f"{base}/1-2-0/ColumnLineageDatasetFacet.json",
            "ColumnLineageDatasetFacet",
            "DatasetFacet",
            {
                "properties": {
                    "fields": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "inputFields": {
                                    "type": "array",
                                    "items": {"$ref": "#/$defs/InputField"},
                                },
                                "transformationDescription": {"type": "string"},
                                "transformationType": {"type": "string"},
                            },
                            "required": ["inputFields"],
                        },
                    },
                    "dataset": {"type": "array", "items": {"$ref": "#/$defs/InputField"}},
                },
                "required": ["fields"],
            },
            InputField=input_field,
        ),
        _facet(
            f"{base}/1-0-1/DatasetVersionDatasetFacet.json",
            "DatasetVersionDatasetFacet",
            "DatasetFacet",
            {"properties": {"datasetVersion": {"type": "string"}}, "required": ["datasetVersion"]},
        ),
        _facet(
            f"{base}/1-0-2/OutputStatisticsOutputDatasetFacet.json",
            "OutputStatisticsOutputDatasetFacet",
            "OutputDatasetFacet",
            {
                "properties": {
                    "rowCount": {"type": "integer"},
                    "size": {"type": "integer"},
                    "fileCount": {"type": "integer"},
                }
            },
        ),
        _facet(
            f"{base}/2-0-4/JobTypeJobFacet.json",
            "JobTypeJobFacet",
            "JobFacet",
            {
                "properties": {
                    "processingType": {"type": "string"},
                    "integration": {"type": "string"},
                    "jobType": {"type": "string"},
                },
                "required": ["processingType", "integration"],
            },
        ),
        _facet(
            f"{base}/1-0-1/NominalTimeRunFacet.json",
            "NominalTimeRunFacet",
            "RunFacet",
            {
                "properties": {
                    "nominalStartTime": {"type": "string", "format": "date-time"},
                    "nominalEndTime": {"type": "string", "format": "date-time"},
                },
                "required": ["nominalStartTime"],
            },
        ),
        _facet(
            f"{base}/1-1-0/DataQualityAssertionsDatasetFacet.json",
            "DataQualityAssertionsDatasetFacet",
            "InputDatasetFacet",
            {
                "properties": {
                    "assertions": {"type": "array", "items": {"$ref": "#/$defs/Assertion"}}
                },
                "required": ["assertions"],
            },
            Assertion={
                "type": "object",
                "properties": {
                    "assertion": {"type": "string"},
                    "success": {"type": "boolean"},
                    "column": {"type": "string"},
                    "severity": {"type": "string"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "expected": {"type": "string"},
                    "actual": {"type": "string"},
                    "content": {"type": "string"},
                    "contentType": {"type": "string"},
                    "params": {"type": "object"},
                },
                "required": ["assertion", "success"],
            },
        ),
        _facet(
            f"{base}/1-0-3/DataQualityMetricsInputDatasetFacet.json",
            "DataQualityMetricsInputDatasetFacet",
            "InputDatasetFacet",
            {
                "properties": {
                    "rowCount": {"type": "integer"},
                    "bytes": {"type": "integer"},
                    "fileCount": {"type": "integer"},
                    "lastUpdated": {"type": "string", "format": "date-time"},
                    "columnMetrics": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "nullCount": {"type": "integer"},
                                "distinctCount": {"type": "integer"},
                                "sum": {"type": "number"},
                                "count": {"type": "number"},
                                "min": {"type": "number"},
                                "max": {"type": "number"},
                                "quantiles": {
                                    "type": "object",
                                    "additionalProperties": {"type": "number"},
                                },
                            },
                        },
                    },
                },
                "required": ["columnMetrics"],
            },
        ),
        _facet(
            f"{base}/1-0-1/ErrorMessageRunFacet.json",
            "ErrorMessageRunFacet",
            "RunFacet",
            {
                "properties": {
                    "message": {"type": "string"},
                    "programmingLanguage": {"type": "string"},
                    "stackTrace": {"type": "string"},
                },
                "required": ["message", "programmingLanguage"],
            },
        ),
    ]


def schema_documents() -> list[dict[str, Any]]:
    """The schemas: the official files when ``tests/openlineage_spec/`` has them, else ours."""
    if OFFICIAL_DIR.is_dir():
        return [json.loads(p.read_text()) for p in sorted(OFFICIAL_DIR.rglob("*.json"))]
    return [_core(), *_facets()]


FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # RFC 3339: a date, "T", a time and a zone.
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value.upper() and parsed.tzinfo is not None


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlparse(value).scheme)


DOCUMENTS = schema_documents()
KNOWN = {doc["$id"] for doc in DOCUMENTS}
REGISTRY: Registry = Registry().with_resources(
    (doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012))
    for doc in DOCUMENTS
)


def _check(instance: Any, ref: str) -> None:
    Draft202012Validator({"$ref": ref}, registry=REGISTRY, format_checker=FORMATS).validate(
        instance
    )


def facets_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Every facet of an event: run, job, and each dataset's facets and input/output facets."""
    found = list((event["run"].get("facets") or {}).values())
    found += list((event["job"].get("facets") or {}).values())
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for group in ("facets", "inputFacets", "outputFacets"):
            found += list((dataset.get(group) or {}).values())
    return found


def validate_event(event: dict[str, Any], producer: str) -> None:
    """Raise jsonschema.ValidationError unless ``event`` is a valid RunEvent whose facets are
    valid too; a facet ``producer`` made must have a known schema."""
    assert event["schemaURL"] == f"{CORE}#/$defs/RunEvent", event["schemaURL"]
    _check(event, f"{CORE}#/$defs/RunEvent")
    for facet in facets_of(event):
        url = facet["_schemaURL"]
        if url.split("#", 1)[0] not in KNOWN:
            assert facet["_producer"] != producer, f"no schema known for our facet {url}"
            continue
        _check(facet, url)
