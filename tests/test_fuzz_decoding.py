"""Property-based fuzzing (hypothesis) of everything that decodes client input: images, request tensors and request
parameters. The property is the contract of the models' adapters: a request is either accepted as well-formed or
rejected with an `InputError` (which the adapters turn into that request's error); nothing else may escape, because
any other exception would be a server-side failure on client data.

`make test` runs a bounded, reproducible budget per target; `python benchmarks/fuzz.py --examples N` runs a long one.
"""

from __future__ import annotations

import base64
import io
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mllm_protector.guard import GuardRequest
from mllm_protector.images import ImageError, decode_image
from mllm_protector.mllm import MllmSettings, parse_mllm_request
from mllm_protector.protector_request import ProtectorSettings, parse_request
from mllm_protector.tensors import InputError, strings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM", "") == "",  # reproducible in CI; the long run explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
MAX_BYTES, MAX_PIXELS = 200_000, 250_000
PROTECTOR = ProtectorSettings(max_prompt_bytes=512, max_response_bytes=512, max_image_bytes=MAX_BYTES,
                              max_image_pixels=MAX_PIXELS, max_tokens_limit=64)


def _encoded(fmt: str, size: tuple[int, int], mode: str) -> bytes:
    buf = io.BytesIO()
    image = Image.new(mode, size, 128 if mode == "L" else (200, 30, 90, 255)[: len(mode)])
    image.save(buf, format=fmt)
    return buf.getvalue()


SEEDS = [
    _encoded("PNG", (17, 9), "RGB"), _encoded("PNG", (5, 40), "RGBA"), _encoded("PNG", (12, 12), "L"),
    _encoded("JPEG", (16, 16), "RGB"), _encoded("WEBP", (10, 7), "RGB"), _encoded("GIF", (8, 8), "L"),
    _encoded("BMP", (4, 4), "RGB"), _encoded("TIFF", (6, 6), "RGB"),
]


@st.composite
def mutated_image(draw) -> bytes:
    """A real encoded image with bytes flipped, cut, inserted or repeated, sometimes base64 (and data-URL) wrapped."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "dup"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i: i + draw(st.integers(1, 16))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
        elif op == "truncate":
            del data[i:]
        elif op == "dup":
            data[i:i] = data[i: i + draw(st.integers(1, 64))]
    out = bytes(data)
    wrap = draw(st.sampled_from(["raw", "raw", "b64", "dataurl"]))
    if wrap == "b64":
        out = base64.b64encode(out)
    elif wrap == "dataurl":
        out = b"data:image/png;base64," + base64.b64encode(out)
    return out


def _check_image(data: bytes) -> None:
    try:
        image = decode_image(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    except ImageError as e:
        assert str(e).startswith("image"), str(e)
        return
    assert image.mode == "RGB" and 0 < image.width * image.height <= MAX_PIXELS


@FUZZ
@given(st.binary(max_size=4096))
def test_decode_image_on_arbitrary_bytes(data):
    _check_image(data)


@FUZZ
@given(mutated_image())
def test_decode_image_on_mutated_images(data):
    _check_image(data)


def test_seed_images_decode():
    for seed in SEEDS:
        _check_image(seed)
    assert decode_image(SEEDS[0], max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS).size == (17, 9)


text_cell = st.one_of(st.binary(max_size=600), st.text(max_size=200).map(str.encode), st.just(b""), st.just(b" \n"))


@st.composite
def column(draw, cell, rows: int):
    """A request tensor: usually `rows` x 1 like a client sends, sometimes another shape."""
    n = draw(st.sampled_from([rows, rows, rows, 0, rows + 1]))
    values = [draw(cell) for _ in range(n)]
    shape = draw(st.sampled_from(["column", "column", "flat", "wide"]))
    array = np.empty(len(values), dtype=object)
    array[:] = values
    if shape == "column":
        return array.reshape(-1, 1)
    if shape == "wide" and len(values) % 2 == 0 and values:
        return array.reshape(-1, 2)
    return array


max_tokens_cell = st.integers(-(2**31), 2**31 - 1)
image_cell = st.one_of(mutated_image(), st.binary(max_size=64), st.just(b""))
parameters = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.dictionaries(st.sampled_from(["harm_threshold", "other", "max_tokens"]),
                    st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=10), st.booleans(),
                              st.none(), st.lists(st.integers(), max_size=2)), max_size=3),
    st.sampled_from(['{"harm_threshold": 0.3}', '{"harm_threshold": "NaN"}', "[1, 2]", "7", '"x"', "null"]),
)


@st.composite
def protector_inputs(draw) -> dict:
    rows = draw(st.integers(1, 3))
    inputs = {"text_input": draw(st.one_of(column(text_cell, rows), st.none()))}
    if draw(st.booleans()):
        inputs["response"] = draw(column(text_cell, rows))
    if draw(st.booleans()):
        inputs["image"] = draw(column(image_cell, rows))
    if draw(st.booleans()):
        tokens = draw(st.lists(max_tokens_cell, min_size=rows, max_size=rows))
        inputs["max_tokens"] = np.array(tokens, dtype=np.int32).reshape(-1, 1)
    return inputs


@FUZZ
@given(protector_inputs(), parameters)
def test_protector_request_decoding(inputs, params):
    try:
        items = parse_request(inputs, params, PROTECTOR)
    except InputError as e:
        assert str(e)
        return
    assert items and all(isinstance(item, GuardRequest) for item in items)
    for item in items:
        assert item.prompt.strip() and len(item.prompt.encode()) <= PROTECTOR.max_prompt_bytes
        assert 0.0 < item.threshold <= PROTECTOR.harm_threshold
        assert item.max_tokens is None or 1 <= item.max_tokens <= PROTECTOR.max_tokens_limit


@FUZZ
@given(protector_inputs())
def test_mllm_request_decoding(inputs):
    mllm_settings = MllmSettings(max_image_bytes=MAX_BYTES, max_image_pixels=MAX_PIXELS)
    try:
        items = parse_mllm_request(inputs, mllm_settings)
    except InputError as e:
        assert str(e)
        return
    assert items


@FUZZ
@given(st.lists(text_cell, max_size=4))
def test_strings_decode_utf8_or_say_which_row(cells):
    array = np.empty(len(cells), dtype=object)
    array[:] = cells
    try:
        decoded = strings(array, "text_input")
    except InputError as e:
        assert "text_input" in str(e)
        return
    assert decoded == [c.decode("utf-8") for c in cells]


@FUZZ
@given(parameters)
def test_request_parameters_on_a_valid_request(params):
    inputs = {"text_input": np.array([[b"What is this?"]], dtype=object),
              "response": np.array([[b"A cat."]], dtype=object)}
    try:
        [item] = parse_request(inputs, params, PROTECTOR)
    except InputError as e:
        assert "harm_threshold" in str(e) or "parameters" in str(e), str(e)
        return
    assert 0.0 < item.threshold <= PROTECTOR.harm_threshold
