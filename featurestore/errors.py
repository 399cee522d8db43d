"""Every error featurestore raises on purpose.

All of them derive from :class:`FeatureStoreError`, so ``except FeatureStoreError`` catches
anything the library reports about bad input or a failed operation::

    FeatureStoreError
    ├── ConfigError              featurestore.yaml missing, malformed or invalid
    ├── DefinitionError          an Entity / FeatureView / ... is invalid
    │   └── SourceSchemaError    a definition does not fit its source's columns or types
    ├── RepoLoadError            a Python file of the feature repository failed to import
    ├── RegistryError            the registry could not be read or written
    │   ├── RegistryNotFoundError  the registry file does not exist (or was deleted)
    │   ├── ObjectNotFoundError  no such entity, view, service or version
    │   └── RegistryConflictError
    ├── FeatureReferenceError    a feature reference is malformed or names nothing
    ├── EntityFrameError         the entity frame lacks a column or has a wrong type
    ├── RetrievalError           the offline engine failed to build a training frame
    ├── TransformationError      an on-demand view's function failed or returned bad output
    ├── EngineCapabilityError    the offline engine cannot do an operation (e.g. statistics)
    ├── OnlineStoreError         the online store is unreachable or failed a read or write
    ├── MaterializationError     a materialization run failed (its watermark did not move)
    ├── PushError                pushed rows do not fit their source, or the push failed
    ├── SavedDatasetError        a saved dataset's name is invalid or taken, or saving failed
    ├── RetentionError           a retention run cannot read or rewrite data the store owns
    ├── ErasureError             an erasure request names no entity key, or the erasure failed
    ├── AccessDeniedError        a policy denies the principal the action on a resource
    ├── AuthenticationError      a token is unknown or revoked
    ├── QualityError             statistics, validation or drift cannot be computed
    │   └── ValidationFailedError  a strict validation rejected a batch: nothing was written
    └── ExtraNotInstalledError   an optional part needs an extra that is not installed

Each message names the object concerned and says what to do about it; a misspelled name gets
the closest known names (:func:`did_you_mean`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A hint naming the known names closest to a misspelled ``name``, or ``""`` when none is.

    Appended to not-found messages so every entry point (SDK, CLI, REST) suggests the same::

        >>> did_you_mean("driver_stat", ["driver_stats", "customer_profile"])
        "; did you mean 'driver_stats'?"
    """
    candidates = sorted({k for k in known if k != name})
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.7)
    if not close:
        return ""
    return f"; did you mean {' or '.join(repr(c) for c in close)}?"


class FeatureStoreError(Exception):
    """Base class of every error featurestore raises on purpose."""


class ConfigError(FeatureStoreError):
    """``featurestore.yaml`` is missing, malformed, or holds an invalid setting."""


class DefinitionError(FeatureStoreError):
    """A definition (entity, feature view, feature service, source) is invalid."""


class SourceSchemaError(DefinitionError):
    """A definition names a column its source does not have, or with an incompatible type."""


class RepoLoadError(FeatureStoreError):
    """A Python file in the feature repository could not be imported."""


class RegistryError(FeatureStoreError):
    """The registry could not be read or written."""


class RegistryNotFoundError(RegistryError):
    """The registry's SQLite file does not exist, or was deleted while in use. Only ``apply``
    creates a registry: every other operation reports it missing rather than start an empty one."""


class ObjectNotFoundError(RegistryError):
    """The registry holds no object (or no version) with the requested name.

    ``kind`` (``"feature_view"``, ``"push_source"``, ...), ``name`` and the missing ``version``
    say what was asked for, when known (the REST service answers Feast's client with the
    matching Feast exception type).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.version = version


class RegistryConflictError(RegistryError):
    """Two definitions in one apply collide (same kind and name, different content)."""


class FeatureReferenceError(FeatureStoreError):
    """A feature reference is malformed, names an unknown view or feature, or clashes.

    ``missing`` is the kind of what the reference names and does not exist (``"feature_view"``,
    ``"feature"``; None when the reference is malformed or clashes), ``version`` the missing
    version of a pinned view.
    """

    def __init__(
        self, message: str, *, missing: str | None = None, version: int | None = None
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.version = version

    @classmethod
    def from_not_found(cls, exc: ObjectNotFoundError) -> FeatureReferenceError:
        """The reference error for a view the registry does not have (same message)."""
        return cls(str(exc), missing=exc.kind, version=exc.version)


class EntityFrameError(FeatureStoreError):
    """The entity frame given to a retrieval lacks a column or has a wrong type."""


class RetrievalError(FeatureStoreError):
    """The offline engine failed to build a training frame."""


class TransformationError(FeatureStoreError):
    """An on-demand feature view's function raised, or returned wrong columns, types or rows."""


class EngineCapabilityError(FeatureStoreError):
    """The configured offline engine lacks a capability an operation needs (statistics, key
    counts, ...); the message names the engine and the operation."""


class OnlineStoreError(FeatureStoreError):
    """The online store is unreachable, or a read or write against it failed."""


class MaterializationError(FeatureStoreError):
    """A materialization run failed; its watermark stays where it was."""


class PushError(FeatureStoreError):
    """Pushed rows do not fit their push source (nothing was written), or writing them failed."""


class SavedDatasetError(FeatureStoreError):
    """A saved dataset's name is invalid or already taken (save with ``overwrite=True``), or
    writing it failed (nothing was recorded)."""


class RetentionError(FeatureStoreError):
    """A retention run could not read or rewrite data the store owns (what it removed before
    stays removed; running it again finishes the job)."""


class ErasureError(FeatureStoreError):
    """An erasure request does not name one entity's full key with values of the right types,
    or removing the entity failed part way (running it again finishes the job)."""


class AccessDeniedError(FeatureStoreError):
    """A policy denies the principal this action on a resource (or none allows it)."""

    def __init__(self, decision: object) -> None:
        self.decision = decision
        super().__init__(str(getattr(decision, "reason", decision)))


class AuthenticationError(FeatureStoreError):
    """A token is unknown or revoked."""


class QualityError(FeatureStoreError):
    """Statistics, validation or drift cannot be computed: no rows in the window, an unknown
    reference, a malformed expectation suite, or a feature that cannot be compared."""


class ValidationFailedError(QualityError):
    """A strict validation rejected a batch; nothing of it was written.

    ``result`` is the :class:`~featurestore.quality.result.ValidationResult` (recorded in the
    registry's validation history), whose failed checks the message lists with sample values.
    """

    def __init__(self, message: str, result: object) -> None:
        self.result = result
        super().__init__(message)


class ExtraNotInstalledError(FeatureStoreError):
    """An optional part of featurestore needs a package extra that is not installed; the
    message names the ``pip install`` command."""
