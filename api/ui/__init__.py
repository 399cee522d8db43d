"""The web UI: Catalog, View, Lineage, Datasets and Audit pages under ``/ui`` (see docs/ui.md)."""

from api.ui.routes import install_ui

__all__ = ["install_ui"]
