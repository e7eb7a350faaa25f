"""Triton tensors <-> Python values, shared by every `model.py` (no Triton import here, so it is testable anywhere).

Triton hands a python-backend model numpy arrays: a STRING (BYTES) tensor arrives as an object array of `bytes`
(shape `[batch, 1]` for the `dims: [1]` inputs of the tensor contract) and a missing optional input as `None`.
The helpers raise `InputError` with a message that names the input and says what was wrong, so the model can fail
that one request with it and serve the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class InputError(ValueError):
    """A request's input is missing or malformed; the message is meant for the client."""


def strings(array: np.ndarray | None, name: str, *, required: bool = True, default: str = "") -> list[str]:
    """A BYTES tensor as a flat list of `str` (UTF-8, strict), one per element in row-major order.

    `array is None` (the input was not sent) gives `InputError` when `required`, else `[default]`.
    """
    if array is None:
        if required:
            raise InputError(f"missing required input '{name}'")
        return [default]
    return [_to_str(item, name, i) for i, item in enumerate(np.asarray(array, dtype=object).reshape(-1))]


def strings_per_row(
    array: np.ndarray | None, name: str, rows: int, *, required: bool = True, default: str = ""
) -> list[str]:
    """Like `strings`, for an input that carries one string per batch row (dims `[1]`): exactly `rows` values.

    A missing optional input gives `rows` copies of `default`.
    """
    if array is None and not required:
        return [default] * rows
    values = strings(array, name, required=required, default=default)
    if len(values) != rows:
        raise InputError(f"input '{name}' has {len(values)} elements, expected {rows} (one per batch row)")
    return values


def batch_rows(array: np.ndarray | None) -> int | None:
    """The batch size of a request tensor of shape `[batch, ...]` (None when the input is absent or a scalar)."""
    if array is None or np.ndim(array) == 0:
        return None
    return int(np.shape(array)[0])


def string_tensor(values: Sequence[str | bytes], rows: int | None = None) -> np.ndarray:
    """An object array of UTF-8 `bytes` for a BYTES output, shape `[rows, 1]` (default: one row per value).

    Built from a list of `bytes` (never a fixed-width `S` array: converting those is ~300x slower in the stub).
    """
    data = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]
    out = np.empty(len(data), dtype=object)
    out[:] = data
    return out.reshape(len(data) if rows is None else rows, -1)


def _to_str(item: object, name: str, index: int) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, np.bytes_ | bytes | bytearray | memoryview):
        raw = bytes(item)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.end]
            raise InputError(
                f"input '{name}' element {index} is not valid UTF-8: byte(s) {bad!r} at offset {exc.start} "
                f"({exc.reason}); send text as UTF-8"
            ) from None
    raise InputError(f"input '{name}' element {index} must be a STRING (BYTES) value, got {type(item).__name__}")


def rows(array: Any, name: str) -> np.ndarray:
    """The per-row values of a `[rows, 1]` (or `[rows]`) tensor, flattened; InputError on any other shape."""
    array = np.asarray(array)
    if array.ndim == 0 or array.size == 0:
        raise InputError(f"input '{name}' is empty: send one element per request")
    if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        raise InputError(f"input '{name}' has shape {list(array.shape)}: expected one element per row ([1])")
    return array.reshape(-1)
