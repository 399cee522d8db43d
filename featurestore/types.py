"""Value types for entity join keys and feature fields.

Use the module-level constants; ``Array`` wraps any scalar type::

    from featurestore.types import Array, Float32, Int64, String
    Field(name="conv_rate", dtype=Float32)
    Field(name="recent_trips", dtype=Array(Int64))
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from featurestore.errors import DefinitionError

__all__ = [
    "Array",
    "Bool",
    "Bytes",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "PrimitiveType",
    "String",
    "UnixTimestamp",
    "ValueType",
    "from_name",
]


@dataclass(frozen=True)
class PrimitiveType:
    """A scalar value type: its canonical name and Arrow type (each offline engine maps it to
    its own SQL type)."""

    name: str
    arrow: pa.DataType

    def __repr__(self) -> str:
        return self.name

    def to_arrow(self) -> pa.DataType:
        """The Arrow type values of this type are stored as."""
        return self.arrow


@dataclass(frozen=True)
class Array:
    """A list of values of one scalar type, e.g. ``Array(Int64)``."""

    element: PrimitiveType

    def __post_init__(self) -> None:
        if not isinstance(self.element, PrimitiveType):
            raise DefinitionError(
                f"Array({self.element!r}): the element type must be a scalar type "
                "such as Int64 or String (arrays of arrays are not supported)"
            )

    @property
    def name(self) -> str:
        return f"Array({self.element.name})"

    def to_arrow(self) -> pa.DataType:
        return pa.list_(self.element.arrow)

    def __repr__(self) -> str:
        return self.name


ValueType = PrimitiveType | Array

Int32 = PrimitiveType("Int32", pa.int32())
Int64 = PrimitiveType("Int64", pa.int64())
Float32 = PrimitiveType("Float32", pa.float32())
Float64 = PrimitiveType("Float64", pa.float64())
String = PrimitiveType("String", pa.string())
Bool = PrimitiveType("Bool", pa.bool_())
Bytes = PrimitiveType("Bytes", pa.binary())
UnixTimestamp = PrimitiveType("UnixTimestamp", pa.timestamp("us", tz="UTC"))

_SCALARS: dict[str, PrimitiveType] = {
    t.name: t for t in (Int32, Int64, Float32, Float64, String, Bool, Bytes, UnixTimestamp)
}


def from_name(name: str) -> ValueType:
    """Parse a canonical type name (``"Int64"``, ``"Array(String)"``) back into a type."""
    if name.startswith("Array(") and name.endswith(")"):
        return Array(_scalar(name[len("Array(") : -1]))
    return _scalar(name)


def _scalar(name: str) -> PrimitiveType:
    try:
        return _SCALARS[name]
    except KeyError:
        known = ", ".join(sorted(_SCALARS))
        raise DefinitionError(
            f"unsupported value type {name!r}; use one of {known} or Array(...)"
        ) from None


def check_value_type(owner: str, dtype: object) -> ValueType:
    """Return ``dtype`` if it is a featurestore value type, else raise naming ``owner``."""
    if isinstance(dtype, PrimitiveType | Array):
        return dtype
    known = ", ".join(sorted(_SCALARS))
    raise DefinitionError(
        f"{owner}: unsupported type {dtype!r}; use a type from featurestore.types ({known}, or Array(...))"
    )


def arrow_compatible(declared: ValueType, actual: pa.DataType) -> bool:
    """Whether a source column of Arrow type ``actual`` can serve values of type ``declared``.

    Widening within a family is allowed (an int32 column serves an Int64 feature, a float column
    serves Float32/Float64); crossing families (string column for a Float32 feature) is not.
    """
    if isinstance(declared, Array):
        if not (pa.types.is_list(actual) or pa.types.is_large_list(actual)):
            return False
        return arrow_compatible(declared.element, actual.value_type)
    checks = {
        "Int32": pa.types.is_integer,
        "Int64": pa.types.is_integer,
        "Float32": lambda t: (
            pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t)
        ),
        "Float64": lambda t: (
            pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t)
        ),
        "String": lambda t: (
            pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)
        ),
        "Bool": pa.types.is_boolean,
        "Bytes": lambda t: (
            pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
        ),
        "UnixTimestamp": lambda t: (
            pa.types.is_timestamp(t) or pa.types.is_integer(t) or pa.types.is_date(t)
        ),
    }
    return bool(checks[declared.name](actual))


def inferred_key_type(actual: pa.DataType) -> PrimitiveType | None:
    """The join-key type a source column of Arrow type ``actual`` gives an undeclared key.

    Integers of every width are Int64 (entity keys of all integer widths encode alike), text is
    String, binary is Bytes, booleans are Bool. Other columns (floats, timestamps, unsigned
    64-bit integers, decimals) give None: such a key stays untyped, as if nothing was inferred.
    """
    if pa.types.is_dictionary(actual):
        actual = actual.value_type
    if pa.types.is_signed_integer(actual) or actual in (pa.uint8(), pa.uint16(), pa.uint32()):
        return Int64
    if pa.types.is_string(actual) or pa.types.is_large_string(actual):
        return String
    if pa.types.is_binary(actual) or pa.types.is_large_binary(actual):
        return Bytes
    if pa.types.is_boolean(actual):
        return Bool
    return None
