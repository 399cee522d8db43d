"""The governance layer: access control, the audit log, lineage, retention and erasure.

Every entry point goes through the :class:`~featurestore.store.FeatureStore` facade, which calls
this layer, so each rule is enforced once and everywhere.
"""
