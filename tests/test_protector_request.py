"""Validation of protector requests: every bad input gets a message naming what was wrong."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from mllm_protector.protector_request import ProtectorSettings, RequestValidationError, parse_request
from mllm_protector.tensors import InputError

SETTINGS = ProtectorSettings(harm_threshold=0.4, max_prompt_bytes=100, max_tokens_limit=64)


def strings(*values: bytes | str) -> np.ndarray:
    return np.array([v.encode() if isinstance(v, str) else v for v in values], dtype=np.object_).reshape(-1, 1)


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format="PNG")
    return buf.getvalue()


def test_full_request_with_image_and_threshold_parameter():
    (item,) = parse_request(
        {"text_input": strings("What is this?"), "image": strings(png()), "max_tokens": np.array([[16]], np.int32)},
        '{"harm_threshold": 0.25}',
        SETTINGS,
    )
    assert item.prompt == "What is this?" and item.image == png() and item.max_tokens == 16
    assert item.threshold == 0.25 and item.response is None


def test_defaults_and_base64_image_and_guard_only():
    (item,) = parse_request(
        {"text_input": strings("q"), "image": strings(base64.b64encode(png())), "response": strings("an answer")},
        None,
        SETTINGS,
    )
    assert item.threshold == 0.4 and item.response == "an answer" and item.max_tokens is None


def test_an_empty_prompt_is_taken_with_an_image_or_a_response():
    """An image-only request and an answer guarded without its prompt are real requests (the MLLM and the detector
    both take an empty prompt); a row with nothing to answer or to score is not."""
    (image_only,) = parse_request({"text_input": strings(""), "image": strings(png())}, None, SETTINGS)
    assert image_only.prompt == "" and image_only.image == png() and image_only.response is None
    (answer_only,) = parse_request({"text_input": strings(" "), "response": strings("an answer")}, None, SETTINGS)
    assert answer_only.prompt == " " and answer_only.response == "an answer"
    with pytest.raises(RequestValidationError, match=r"^text_input\[1\] is empty, and the request has neither"):
        parse_request({"text_input": strings("q", ""), "image": None}, None, SETTINGS)


def test_a_request_may_tighten_the_threshold_up_to_the_configured_one():
    for value in ("0.4", 0.4, 1e-6):
        (item,) = parse_request({"text_input": strings("q")}, {"harm_threshold": value}, SETTINGS)
        assert item.threshold == float(value)


def test_several_rows_in_one_request():
    items = parse_request({"text_input": strings("a", "b"), "response": strings("x", "y")}, "{}", SETTINGS)
    assert [(i.prompt, i.response) for i in items] == [("a", "x"), ("b", "y")]


@pytest.mark.parametrize(
    ("inputs", "params", "message"),
    [
        ({}, None, "missing required input 'text_input'"),
        ({"text_input": strings("")}, None, "text_input is empty"),
        ({"text_input": strings("   ")}, None, "text_input is empty"),
        ({"text_input": strings(b"\xff\xfe")}, None, "'text_input' element 0 is not valid UTF-8"),
        ({"text_input": strings("x" * 101)}, None, "text_input is 101 bytes; the limit is 100"),
        ({"text_input": strings("q"), "response": strings("")}, None, "response is empty"),
        ({"text_input": strings("q"), "image": strings(b"not an image")}, None, "image"),
        ({"text_input": strings("q"), "image": strings(b"")}, None, "image is empty"),
        ({"text_input": strings("q"), "max_tokens": np.array([[0]], np.int32)}, None, "between 1 and 64"),
        ({"text_input": strings("q"), "max_tokens": np.array([[10_000]], np.int32)}, None, "between 1 and 64"),
        ({"text_input": strings("a", "b"), "response": strings("x")}, None, "response has 1 rows"),
        ({"text_input": strings("q")}, '{"harm_threshold": "high"}', "not a number"),
        ({"text_input": strings("q")}, '{"harm_threshold": true}', "not a number"),
        ({"text_input": strings("q")}, '{"harm_threshold": 1.5}', "must be in (0, 1]"),
        ({"text_input": strings("q")}, '{"harm_threshold": 0.41}', "stricter, not looser"),
        ({"text_input": strings("q")}, '{"harm_threshold": 1.0}', "stricter, not looser"),
    ],
)
def test_bad_requests_are_rejected_with_a_clear_message(inputs, params, message):
    with pytest.raises(InputError) as excinfo:
        parse_request(inputs, params, SETTINGS)
    assert message in str(excinfo.value)


def test_settings_from_config_parameters():
    settings = ProtectorSettings.from_parameters({"harm_threshold": "0.7", "max_tokens_limit": "32", "other": "x"})
    assert settings.harm_threshold == 0.7 and settings.max_tokens_limit == 32
    with pytest.raises(RequestValidationError):
        ProtectorSettings.from_parameters({"harm_threshold": "0"})
