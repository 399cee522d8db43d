"""The public API is a deliberate list: __all__ is complete and every name resolves."""

from __future__ import annotations

import featurestore
from featurestore import types


def test_all_names_resolve() -> None:
    for name in featurestore.__all__:
        assert hasattr(featurestore, name), name


def test_all_is_complete() -> None:
    public = {n for n in vars(featurestore) if not n.startswith("_")}
    modules = {n for n, v in vars(featurestore).items() if type(v).__name__ == "module"}
    assert public - modules <= set(featurestore.__all__)


def test_design_contract_imports() -> None:
    expected = {"FeatureStore", "Entity", "FeatureView", "Field", "FileSource", "FeatureService"}
    assert expected <= set(featurestore.__all__)
    assert {"Int64", "Float32", "Float64", "String", "Bool", "Array"} <= set(types.__all__)
