"""Decoding Triton BYTES tensors into text, with errors a client can act on.

Shared by every python-backend model (harm_tokenizer, detoxifier, mllm, protector).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TensorDecodeError(ValueError):
    """A request tensor that cannot be used; the message names the tensor and the row."""


def decode_strings(tensor: Any, name: str, allow_empty: bool = True) -> list[str]:
    """A [rows, 1] (or [rows]) BYTES tensor, or its numpy array, as one str per row.

    `tensor` may be a `pb_utils.Tensor`, a numpy array or None (a missing input: error).
    """
    if tensor is None:
        raise TensorDecodeError(f"missing required input '{name}'")
    flat = rows(tensor.as_numpy() if hasattr(tensor, "as_numpy") else tensor, name)
    texts = []
    for i, value in enumerate(flat):
        where = name if len(flat) == 1 else f"{name}[{i}]"
        raw = value if isinstance(value, bytes) else str(value).encode()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TensorDecodeError(f"{where} is not valid UTF-8 (byte {e.start})") from None
        if not allow_empty and not text.strip():
            raise TensorDecodeError(f"{where} is empty")
        texts.append(text)
    return texts


def rows(array: Any, name: str) -> np.ndarray:
    """The per-row values of a [rows, 1] (or [rows]) tensor, flattened."""
    array = np.asarray(array)
    if array.ndim == 0 or array.size == 0:
        raise TensorDecodeError(f"{name} is empty: send one element per request")
    if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        raise TensorDecodeError(f"{name} has shape {list(array.shape)}: expected one element per row ([1])")
    return array.reshape(-1)
