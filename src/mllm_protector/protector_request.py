"""Turning one `protector` request's tensors and parameters into guard items, with client-facing errors.

A Triton request may carry several rows (its own batch dimension); each row becomes one `GuardRequest`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mllm_protector.guard import GuardRequest
from mllm_protector.images import ImageError, decode_image
from mllm_protector.tensors import InputError, rows, strings


class RequestValidationError(InputError):
    """What was wrong with a request, worded for the client."""


@dataclass(frozen=True)
class ProtectorSettings:
    """The `protector` config parameters (defaults in config.pbtxt; documented in the README)."""

    harm_threshold: float = 0.5
    on_detector_error: str = "error"
    max_prompt_bytes: int = 32_768
    max_response_bytes: int = 65_536
    max_image_bytes: int = 10_000_000
    max_image_pixels: int = 16_777_216
    max_tokens_limit: int = 512
    score_timeout_s: float = 0.0  # 0: no deadline (see Guard)
    rewrite_timeout_s: float = 0.0
    generate_timeout_s: float = 0.0

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> ProtectorSettings:
        kwargs: dict[str, Any] = {}
        for name, field in cls.__dataclass_fields__.items():
            if params.get(name, "") != "":
                kwargs[name] = type(field.default)(params[name])
        settings = cls(**kwargs)
        _check_threshold(settings.harm_threshold, "harm_threshold parameter")
        return settings


def parse_request(
    inputs: Mapping[str, np.ndarray | None],
    parameters: str | Mapping[str, Any] | None,
    settings: ProtectorSettings,
) -> list[GuardRequest]:
    """Validate one request; raises RequestValidationError naming the input and row that was wrong."""
    prompts = _texts(inputs.get("text_input"), "text_input", settings.max_prompt_bytes, required=True)
    count = len(prompts)
    responses = _texts(inputs.get("response"), "response", settings.max_response_bytes, count=count)
    images = _rows(inputs.get("image"), "image", count)
    max_tokens = _rows(inputs.get("max_tokens"), "max_tokens", count)
    threshold = _threshold(parameters, settings.harm_threshold)

    items = []
    for i in range(count):
        image = None
        if images is not None:
            image = _image(images[i], _where("image", i, count), settings)
        response = None if responses is None else responses[i]
        if response is not None and not response.strip():
            raise RequestValidationError(
                f"{_where('response', i, count)} is empty: omit the input to have the MLLM answer")
        # An image-only request, or an answer guarded without its prompt, is a real request: the MLLM and the
        # detector both take an empty prompt. A row with nothing at all to answer or to score is not.
        if not prompts[i].strip() and image is None and response is None:
            raise RequestValidationError(
                f"{_where('text_input', i, count)} is empty, and the request has neither an image nor a response")
        tokens = None
        if max_tokens is not None:
            tokens = int(max_tokens[i])
            if not 1 <= tokens <= settings.max_tokens_limit:
                raise RequestValidationError(
                    f"{_where('max_tokens', i, count)} must be between 1 and {settings.max_tokens_limit}, got {tokens}"
                )
        items.append(
            GuardRequest(
                prompt=prompts[i],
                image=image,
                response=response,
                max_tokens=tokens,
                threshold=threshold,
            )
        )
    return items


def _where(name: str, row: int, count: int) -> str:
    return name if count == 1 else f"{name}[{row}]"


def _rows(array: np.ndarray | None, name: str, count: int | None = None) -> np.ndarray | None:
    if array is None:
        return None
    flat = rows(array, name)
    if count is not None and len(flat) != count:
        raise RequestValidationError(f"{name} has {len(flat)} rows but text_input has {count}")
    return flat


def _texts(
    array: np.ndarray | None, name: str, max_bytes: int, count: int | None = None, required: bool = False
) -> list[str] | None:
    if array is None:
        if required:
            raise RequestValidationError(f"missing required input '{name}'")
        return None
    texts = strings(_rows(array, name, count), name)
    for i, text in enumerate(texts):
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            raise RequestValidationError(f"{_where(name, i, len(texts))} is {size} bytes; the limit is {max_bytes}")
    return texts


def _image(value: Any, where: str, settings: ProtectorSettings) -> bytes:
    data = value if isinstance(value, bytes) else bytes(value)
    if not data:
        raise RequestValidationError(f"{where} is empty: omit the input to send no image")
    try:
        decode_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    except ImageError as e:
        raise RequestValidationError(f"{where}: {e}") from None
    return data


def _threshold(parameters: str | Mapping[str, Any] | None, default: float) -> float:
    if not parameters:
        return default
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except json.JSONDecodeError:
            raise RequestValidationError("request parameters are not valid JSON") from None
    if parameters is None:
        return default
    if not isinstance(parameters, Mapping):
        raise RequestValidationError(f"request parameters must be a JSON object, got {type(parameters).__name__}")
    value = parameters.get("harm_threshold")
    if value is None:
        return default
    try:
        if isinstance(value, bool):  # float(True) is 1.0: `true` would silently turn flagging off
            raise TypeError
        threshold = float(value)
    except (TypeError, ValueError):
        raise RequestValidationError(f"request parameter harm_threshold={value!r} is not a number") from None
    _check_threshold(threshold, "request parameter harm_threshold")
    if threshold > default:  # the guard is the operator's control: a caller may tighten it, not switch it off
        raise RequestValidationError(
            f"request parameter harm_threshold={threshold:g} is above this server's {default:g}: a request may make "
            "the guard stricter, not looser (the protector config's harm_threshold sets the loosest)")
    return threshold


def _check_threshold(value: float, what: str) -> None:
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise RequestValidationError(f"{what} must be in (0, 1], got {value}")
