"""What every offline engine's ``offline_store`` settings have, importable without any engine.

Each engine's own model lives in its package (``featurestore/offline/<engine>/settings.py``),
subclasses :class:`OfflineStoreSettings` with ``type: Literal["<engine>"]`` and adds its keys;
the row of :data:`featurestore.offline.backends.OFFLINE_ENGINES` names it, and
``featurestore.yaml``'s ``offline_store`` section picks it by ``type``.
"""

from __future__ import annotations

from featurestore.config_types import FolderPath, Section

__all__ = ["OfflineStoreSettings"]


class OfflineStoreSettings(Section):
    """The keys every engine has: ``type`` picks the engine; ``data_path`` is the folder of data
    the store itself owns (rows pushed to the offline store), relative to the repository unless
    absolute, from which no feature view's source may read; ``temp_directory`` is where the
    engine spills and the materializer spools (``None``: the engine's default)."""

    type: str
    data_path: FolderPath = "data/store"
    temp_directory: str | None = None
