"""Where a :class:`~featurestore.definitions.SparkSource` table's data lives, from the catalog.

``DESCRIBE TABLE EXTENDED`` gives a table's ``Location`` (a Hive or data source table, Delta,
Iceberg); a local one comes back as a ``file:`` URI, which is turned back into a path. A view or
temporary view has no location of its own.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import SparkSource
from featurestore.errors import DefinitionError, SourceSchemaError


def table_of(view: FeatureView) -> str:
    """The table ``view`` reads; a clear error when its source is not a SparkSource."""
    source = view.source
    if not isinstance(source, SparkSource):
        raise DefinitionError(
            f"{view.label}: its source {source.name!r} is not a SparkSource, so it has no table "
            "location; its files are where its path says"
        )
    return source.table


def table_location(session: SparkSession, view: FeatureView) -> str:
    """The catalog's ``Location`` of the view's table, ``file:`` stripped for a local one."""
    table = table_of(view)
    try:
        rows = session.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    except AnalysisException as exc:
        raise SourceSchemaError(f"{view.label}: describing table {table!r} failed: {exc}") from exc
    for row in rows:
        if row[0] == "Location" and row[1]:
            return local_path(str(row[1]))
    raise SourceSchemaError(
        f"{view.label}: table {table!r} has no storage location in the catalog (a view or "
        "temporary view?), so there are no files to watch; point the source at the table itself"
    )


def local_path(location: str) -> str:
    """``file:/a/b`` or ``file:///a/b`` as ``/a/b`` (percent-escapes decoded); other URIs as
    they are."""
    match = re.fullmatch(r"file:(?://)?(/.*)", location)
    return unquote(match.group(1)) if match else location
