"""HyperLogLog registers for a lifetime ``approx_count_distinct`` (the online state's folded
partial), so its state stays bounded.

A folded lifetime approx_count_distinct keeps HyperLogLog registers instead of the distinct
values, so its state stays bounded (at most 2**HLL_BITS registers): ``[None, idx << 8 | rank,
...]`` (a leading None: a distinct-values partial never holds a null). Relative standard error
1.04 / sqrt(2**HLL_BITS) = 1.6%; below 2.5 * 2**HLL_BITS it uses linear counting, exact in
practice for small counts.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

HLL_BITS = 12
_HLL_M = 1 << HLL_BITS
_MASK64 = (1 << 64) - 1


def is_sketch(partial: Any) -> bool:
    """Whether ``partial`` holds registers (not distinct values)."""
    return isinstance(partial, list) and bool(partial) and partial[0] is None


def _hash64(value: Any) -> int:
    if isinstance(value, bool):
        data = b"b1" if value else b"b0"
    elif isinstance(value, int):
        data = b"i" + str(value).encode()
    elif isinstance(value, float):
        data = b"f" + repr(value).encode()
    elif isinstance(value, str):
        data = b"s" + value.encode("utf-8")
    elif isinstance(value, bytes):
        data = b"y" + value
    else:
        data = b"r" + repr(value).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _registers(partial: Any) -> dict[int, int]:
    if partial is None:
        return {}
    if is_sketch(partial):
        return {item >> 8: item & 255 for item in partial[1:]}
    registers: dict[int, int] = {}
    for value in partial:
        h = _hash64(value)
        index, rest = h >> (64 - HLL_BITS), (h << HLL_BITS) & _MASK64
        rank = min(64 - rest.bit_length() + 1, 64 - HLL_BITS + 1)
        if rank > registers.get(index, 0):
            registers[index] = rank
    return registers


def sketch_union(a: Any, b: Any) -> list[Any]:
    """The registers of the union of two partials (registers or distinct values; None: empty)."""
    merged = _registers(a)
    for index, rank in _registers(b).items():
        if rank > merged.get(index, 0):
            merged[index] = rank
    return [None, *sorted(index << 8 | rank for index, rank in merged.items())]


def estimate(partial: list[Any]) -> int:
    """The estimated number of distinct values behind ``partial``'s registers."""
    registers = _registers(partial)
    zeros = _HLL_M - len(registers)
    total = zeros + sum(2.0**-rank for rank in registers.values())
    estimate = 0.7213 / (1 + 1.079 / _HLL_M) * _HLL_M * _HLL_M / total
    if estimate <= 2.5 * _HLL_M and zeros:
        estimate = _HLL_M * math.log(_HLL_M / zeros)
    return round(estimate)
