"""A spool: record batches parked in a temporary Arrow IPC file and read back in order.

Strict validation must see every row of a view's run before the first one is written online
(a rejected run writes nothing), while a run may be larger than memory. The materializer
validates each batch as the offline engine streams it, parks it here, and writes the parked
batches once the whole run passed. The file lives in the offline store's ``temp_directory``
when one is set (else the system's temporary folder) and is deleted on close, whatever happened.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

import pyarrow as pa
import pyarrow.ipc as ipc


class BatchSpool:
    """Write batches with :meth:`add`, then iterate :meth:`replay` once::

    with BatchSpool(temp_dir) as spool:
        for batch in batches:
            spool.add(batch)
        for batch in spool.replay():
            write(batch)
    """

    def __init__(self, directory: Path | None = None) -> None:
        # Held open until close(): the spool owns it (the OS removes it when it is closed).
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115
            prefix="featurestore-spool-", dir=directory
        )
        self._writer: ipc.RecordBatchStreamWriter | None = None
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """Park ``batch`` (every batch must have the first one's schema)."""
        if self._writer is None:
            self._writer = ipc.new_stream(self._file, batch.schema)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def replay(self) -> Iterator[pa.RecordBatch]:
        """The parked batches, in the order they were added."""
        if self._writer is None:
            return
        self._writer.close()
        self._file.seek(0)
        yield from ipc.open_stream(self._file)

    def close(self) -> None:
        """Delete the spool file."""
        self._file.close()

    def __enter__(self) -> BatchSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
