"""The one place where requests to the served models are turned into tensors.

Every request is first described protocol-neutrally as an :class:`InferSpec` (model name, input tensors, requested
outputs, request parameters); :func:`to_triton` then turns a spec into ``tritonclient`` ``InferInput`` /
``InferRequestedOutput`` objects for HTTP or gRPC. Nothing here imports ``tritonclient`` or talks to a server, so the
tensor contract of ``shared/DESIGN.md`` is testable offline:

- every tensor has dims ``[1]`` per request and the models batch, so each input is sent with shape ``[1, 1]``;
- text and images are ``BYTES`` tensors built from ``np.array([...], dtype=np.object_)``; ``max_tokens`` is ``INT32``;
- optional inputs that are ``None`` are omitted from the request (never sent empty);
- ``protector``'s ``original_text`` output is requested only when the caller asks for it; ``harm_categories``
  (the original answer's ``harm_score`` split over the hazard categories) always;
- the per-request threshold travels as the request parameter ``harm_threshold`` (a float).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

# Model names served by the repository (shared/DESIGN.md).
PROTECTOR = "protector"
MLLM = "mllm"
HARM_DETECTOR = "harm_detector"
DETOXIFIER = "detoxifier"
MODELS: tuple[str, ...] = (PROTECTOR, MLLM, HARM_DETECTOR, DETOXIFIER)

# Tensor names.
TEXT_INPUT = "text_input"
IMAGE = "image"
RESPONSE = "response"
MAX_TOKENS = "max_tokens"
TEXT_OUTPUT = "text_output"
HARM_SCORE = "harm_score"
REWRITTEN = "rewritten"
ORIGINAL_TEXT = "original_text"
HARM_CATEGORIES_OUTPUT = "harm_categories"

# Request parameter of `protector` that overrides the server's threshold for one request.
THRESHOLD_PARAMETER = "harm_threshold"

INT32_MAX = 2**31 - 1

Text = str | bytes
"""A text input: ``str`` is sent UTF-8 encoded; ``bytes`` are sent as given (e.g. to test invalid UTF-8)."""

ImageSource = bytes | bytearray | memoryview | str | os.PathLike[str]
"""An image input: encoded PNG/JPEG/WebP bytes, or the path (``str`` / ``PathLike``) of such a file."""


@dataclass(frozen=True)
class TensorSpec:
    """One input tensor: its name, Triton datatype (``"BYTES"``, ``"INT32"``) and data (shape ``[1, 1]``)."""

    name: str
    datatype: str
    data: np.ndarray

    @property
    def shape(self) -> list[int]:
        return list(self.data.shape)


@dataclass(frozen=True)
class InferSpec:
    """A complete inference request, independent of the protocol.

    ``outputs`` are the output names requested explicitly (the server returns only these); ``parameters`` are the
    request parameters (``{}`` for none). Use :func:`dataclasses.replace` to derive variants (e.g. drop an input to
    test the server's validation) and send them with ``ProtectorClient.infer``.
    """

    model: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def input(self, name: str) -> TensorSpec | None:
        """The input tensor called ``name``, or None when the request does not carry it."""
        return next((t for t in self.inputs if t.name == name), None)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    def without_input(self, name: str) -> InferSpec:
        """The same request without the input ``name`` (for testing the server's validation)."""
        return InferSpec(self.model, tuple(t for t in self.inputs if t.name != name), self.outputs, self.parameters)


# ---------------------------------------------------------------------------------------------------------------
# Single tensors


def bytes_tensor(name: str, value: bytes | str) -> TensorSpec:
    """A ``BYTES`` tensor of shape ``[1, 1]`` holding one element (``str`` is UTF-8 encoded)."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise TypeError(f"{name} must be str or bytes, got {type(value).__name__}")
    return TensorSpec(name, "BYTES", np.array([[raw]], dtype=np.object_))


def int32_tensor(name: str, value: int) -> TensorSpec:
    """An ``INT32`` tensor of shape ``[1, 1]``."""
    return TensorSpec(name, "INT32", np.array([[value]], dtype=np.int32))


def read_image(image: ImageSource) -> bytes:
    """The encoded bytes of ``image``: bytes-like values are returned as they are, a path is read.

    Raises ``OSError`` (e.g. ``FileNotFoundError``) when a path cannot be read and ``TypeError`` for other types.
    No decoding happens here: the server validates the image and says what is wrong with it.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    raise TypeError(f"image must be bytes or a file path, got {type(image).__name__}")


def check_max_tokens(max_tokens: int) -> int:
    """``max_tokens`` as an int; raises ValueError unless it is a positive integer that fits INT32."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)):
        raise ValueError(f"max_tokens must be an integer, got {max_tokens!r}")
    if not 1 <= int(max_tokens) <= INT32_MAX:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens}")
    return int(max_tokens)


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float; raises ValueError unless it is a finite number (the server checks its range)."""
    if isinstance(threshold, bool):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number, got {threshold!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Requests, one builder per served model


def protector_request(
    prompt: Text,
    image: ImageSource | None = None,
    response: Text | None = None,
    max_tokens: int | None = None,
    threshold: float | None = None,
    want_original: bool = False,
) -> InferSpec:
    """The request to ``protector``: the guarded MLLM (or, with ``response``, guard-only mode).

    Inputs ``text_input`` (always), ``image``, ``response``, ``max_tokens`` (each only when not None). Outputs
    ``text_output``, ``harm_score``, ``harm_categories``, then ``rewritten``, or ``original_text`` if
    ``want_original``. A ``threshold`` becomes the request parameter ``harm_threshold``.
    """
    inputs = [bytes_tensor(TEXT_INPUT, prompt)]
    if image is not None:
        inputs.append(bytes_tensor(IMAGE, read_image(image)))
    if response is not None:
        inputs.append(bytes_tensor(RESPONSE, response))
    if max_tokens is not None:
        inputs.append(int32_tensor(MAX_TOKENS, check_max_tokens(max_tokens)))
    # With original_text, `rewritten` is left out (it is text_output != original_text): a request naming every
    # output is indistinguishable from one naming none, which the server answers without original_text.
    outputs = (TEXT_OUTPUT, HARM_SCORE, HARM_CATEGORIES_OUTPUT, ORIGINAL_TEXT if want_original else REWRITTEN)
    parameters = {} if threshold is None else {THRESHOLD_PARAMETER: check_threshold(threshold)}
    return InferSpec(PROTECTOR, tuple(inputs), outputs, MappingProxyType(parameters))


def mllm_request(prompt: Text, image: ImageSource | None = None, max_tokens: int | None = None) -> InferSpec:
    """The request to the bare (unguarded) ``mllm``: ``text_input``, optional ``image`` / ``max_tokens``."""
    inputs = [bytes_tensor(TEXT_INPUT, prompt)]
    if image is not None:
        inputs.append(bytes_tensor(IMAGE, read_image(image)))
    if max_tokens is not None:
        inputs.append(int32_tensor(MAX_TOKENS, check_max_tokens(max_tokens)))
    return InferSpec(MLLM, tuple(inputs), (TEXT_OUTPUT,))


def harm_detector_request(prompt: Text, response: Text) -> InferSpec:
    """The request to ``harm_detector``: ``text_input`` (the prompt, may be empty), ``response`` -> ``harm_score``."""
    return InferSpec(HARM_DETECTOR, (bytes_tensor(TEXT_INPUT, prompt), bytes_tensor(RESPONSE, response)), (HARM_SCORE,))


def detoxifier_request(prompt: Text, response: Text) -> InferSpec:
    """The request to ``detoxifier``: ``text_input`` (the prompt) and the harmful ``response`` -> ``text_output``."""
    return InferSpec(DETOXIFIER, (bytes_tensor(TEXT_INPUT, prompt), bytes_tensor(RESPONSE, response)), (TEXT_OUTPUT,))


# ---------------------------------------------------------------------------------------------------------------
# To tritonclient objects


def to_triton(spec: InferSpec, module: Any) -> tuple[list[Any], list[Any]]:
    """``(inputs, outputs)`` for ``module.InferenceServerClient.infer`` from a spec.

    ``module`` is ``tritonclient.http`` or ``tritonclient.grpc`` (their ``aio`` variants use the same classes). HTTP
    sends every tensor in the binary extension, so images travel as raw bytes, not base64.
    """
    inputs = []
    for tensor in spec.inputs:
        infer_input = module.InferInput(tensor.name, tensor.shape, tensor.datatype)
        infer_input.set_data_from_numpy(tensor.data)
        inputs.append(infer_input)
    outputs = [module.InferRequestedOutput(name) for name in spec.outputs]
    return inputs, outputs
