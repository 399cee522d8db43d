"""The OpenLineage emitter proper, on the openlineage-python client (the ``lineage`` extra).

Only :func:`featurestore.governance.openlineage.open_emitter` imports this module, and only when
``featurestore.yaml`` configures events, so the package is needed only then.

Every event is a RunEvent of spec 2-0-2 (the client's): the job carries a ``jobType`` facet
(``BATCH``, integration ``FEATURESTORE``, job type ``APPLY``, ``MATERIALIZE``, ``PUSH``,
``SAVE_DATASET``...), the run a ``nominalTime`` facet when it covers a time window and an
``errorMessage`` facet when it failed, datasets their ``schema``, ``version`` and
``columnLineage`` facets, and outputs an ``outputStatistics`` facet with the rows written.
"""

from __future__ import annotations

import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    DatasetFacet,
    InputDatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from openlineage.client.transport.transport import Config, Transport

from featurestore import __version__
from featurestore.config import OpenLineageConfig
from featurestore.governance.openlineage import DatasetRef, LineageEmitter, LineageRun

#: Who produced the events (a URI, as the spec asks).
PRODUCER = f"urn:featurestore:{__version__}"
# A dead server costs one short try, not urllib3's five retries with back-off.
_HTTP_RETRY = {"total": 1, "connect": 1, "read": 1, "backoff_factor": 0.1}


class ConsoleTransport(Transport):
    """One JSON event per line on standard error (the client's console transport logs at INFO,
    which is silent unless logging is configured)."""

    kind = "featurestore_console"
    config_class = Config

    def emit(self, event: Any) -> None:
        print(Serde.to_json(event), file=sys.stderr, flush=True)


class OpenLineageEmitter(LineageEmitter):
    """Sends each run's events through the configured transport."""

    enabled = True

    def __init__(self, settings: OpenLineageConfig, repo_path: Path) -> None:
        super().__init__()
        self.settings = settings
        self.transport = _transport(settings, repo_path)
        self.client = OpenLineageClient(transport=self.transport)

    def _emit(self, event_type: str, run: LineageRun, error: BaseException | None) -> None:
        self.client.emit(self.event(event_type, run, error))

    def event(self, event_type: str, run: LineageRun, error: BaseException | None) -> RunEvent:
        """The RunEvent of one state of ``run``."""
        return RunEvent(
            eventType=RunState[event_type],
            eventTime=datetime.now(timezone.utc).isoformat(),
            run=Run(runId=run.run_id, facets=_run_facets(run, error)),
            job=Job(
                namespace=self.settings.namespace,
                name=run.job,
                facets=_job_facets(run),
            ),
            inputs=[
                InputDataset(
                    namespace=d.namespace,
                    name=d.name,
                    facets=_dataset_facets(d),
                    inputFacets=_input_facets(d),
                )
                for d in run.inputs
            ],
            outputs=[
                OutputDataset(
                    namespace=d.namespace,
                    name=d.name,
                    facets=_dataset_facets(d),
                    outputFacets=_output_facets(d),
                )
                for d in run.outputs
            ],
            producer=PRODUCER,
        )

    def close(self) -> None:
        self.client.close(timeout=self.settings.timeout)


def _transport(settings: OpenLineageConfig, repo_path: Path) -> Transport:
    if settings.transport == "file":
        assert settings.path is not None  # the config requires it
        path = Path(settings.path)
        path = path if path.is_absolute() else repo_path / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if settings.transport == "http":
        assert settings.url is not None  # the config requires it
        auth = ApiKeyTokenProvider({"apiKey": settings.api_key}) if settings.api_key else None
        config = HttpConfig.from_dict(
            {
                "url": settings.url,
                "endpoint": settings.endpoint,
                "timeout": settings.timeout,
                "retry": _HTTP_RETRY,
            }
        )
        if auth is not None:
            config.auth = auth
        return HttpTransport(config)
    return ConsoleTransport()


def _job_facets(run: LineageRun) -> dict[str, JobFacet]:
    return {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH",
            integration="FEATURESTORE",
            jobType=run.job_type,
            producer=PRODUCER,
        )
    }


def _run_facets(run: LineageRun, error: BaseException | None) -> dict[str, RunFacet]:
    facets: dict[str, RunFacet] = {}
    start, end = run.nominal or (None, None)
    if start is not None:
        facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=start.isoformat(),
            nominalEndTime=None if end is None else end.isoformat(),
            producer=PRODUCER,
        )
    if error is not None:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}",
            programmingLanguage="PYTHON",
            stackTrace="".join(traceback.format_exception(error)),
            producer=PRODUCER,
        )
    return facets


def _dataset_facets(dataset: DatasetRef) -> dict[str, DatasetFacet]:
    facets: dict[str, DatasetFacet] = {}
    if dataset.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=name, type=dtype)
                for name, dtype in dataset.fields
            ],
            producer=PRODUCER,
        )
    if dataset.version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=dataset.version, producer=PRODUCER
        )
    lineage = {out: ins for out, ins in dataset.column_lineage.items() if ins}
    if lineage:
        facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                out: column_lineage_dataset.Fields(
                    inputFields=[
                        column_lineage_dataset.InputField(
                            namespace=i.namespace,
                            name=i.name,
                            field=i.field,
                            transformations=[
                                column_lineage_dataset.Transformation(
                                    type="DIRECT", subtype="IDENTITY"
                                )
                            ],
                        )
                        for i in ins
                    ],
                    transformationType="IDENTITY",
                    transformationDescription="copied (renamed by field_mapping, if any)",
                )
                for out, ins in lineage.items()
            },
            producer=PRODUCER,
        )
    return facets


def _output_facets(dataset: DatasetRef) -> dict[str, OutputDatasetFacet]:
    if dataset.rows is None:
        return {}
    return {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=dataset.rows, producer=PRODUCER
        )
    }


def _assertions(
    dataset: DatasetRef,
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=a.assertion, success=a.success, column=a.column
            )
            for a in dataset.assertions
        ],
        producer=PRODUCER,
    )


def _input_facets(dataset: DatasetRef) -> dict[str, InputDatasetFacet]:
    """The quality layer's facets of an input: the assertions checked on it, its metrics."""
    facets: dict[str, InputDatasetFacet] = {}
    if dataset.assertions:
        facets["dataQualityAssertions"] = _assertions(dataset)
    if dataset.metrics_rows is None and not dataset.column_metrics:
        return facets
    metrics = data_quality_metrics_input_dataset
    return {
        **facets,
        "dataQualityMetrics": metrics.DataQualityMetricsInputDatasetFacet(
            rowCount=dataset.metrics_rows,
            columnMetrics={
                name: metrics.ColumnMetrics(
                    nullCount=m.null_count,
                    distinctCount=m.distinct_count,
                    count=None if m.count is None else float(m.count),
                    min=m.min,
                    max=m.max,
                    quantiles=dict(m.quantiles),
                )
                for name, m in dataset.column_metrics.items()
            },
            producer=PRODUCER,
        ),
    }
