"""The `mllm` backends (OCR stand-in, Hugging Face image-text-to-text on a tiny LLaVA), OCR, and request parsing."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from mllm_protector.export import smollm2, tiny_llava
from mllm_protector.mllm import (
    HFImageTextToText,
    MllmSettings,
    OcrChatMLLM,
    load_mllm,
    parse_mllm_request,
)
from mllm_protector.ocr import OcrReader, join_lines
from mllm_protector.tensors import InputError

ROOT = Path(__file__).resolve().parents[1]
FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def font(size: int = 28) -> ImageFont.ImageFont:
    for path in FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def render(lines: list[str], size: tuple[int, int] = (640, 160)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((20, 20 + 48 * i), line, font=font(), fill="black")
    return image


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    return smollm2.build(ROOT / "artifacts" / "smollm2-135m-instruct")


@pytest.fixture(scope="module")
def ocr() -> OcrReader:
    return OcrReader()


@pytest.fixture(scope="module")
def stand_in(smollm2_dir: Path, ocr: OcrReader) -> OcrChatMLLM:
    return OcrChatMLLM(smollm2_dir, ocr=ocr)


@pytest.fixture(scope="module")
def tiny_llava_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    return tiny_llava.build(tmp_path_factory.mktemp("tiny-llava"), tokenizer_dir=smollm2_dir)


# ---- OCR ---------------------------------------------------------------------------------------------------------


def test_ocr_reads_rendered_text(ocr: OcrReader) -> None:
    image = render(["Steps to make a cake"])
    ocr.read(image)  # warm-up (first ONNX runs allocate)
    start = time.perf_counter()
    text = ocr.read(image)
    elapsed = time.perf_counter() - start
    print(f"OCR: {elapsed:.2f} s for a 640x160 image -> {text!r}")
    words = text.lower().replace(".", " ").split()
    for word in ("steps", "to", "make", "a", "cake"):
        assert word in words, text


def test_ocr_reading_order_and_blank_image(ocr: OcrReader) -> None:
    image = Image.new("RGB", (640, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 20), "First line here", font=font(), fill="black")
    draw.text((20, 120), "Left", font=font(), fill="black")
    draw.text((420, 120), "Right", font=font(), fill="black")
    lines = ocr.read(image).splitlines()
    assert len(lines) == 2, lines
    assert "first" in lines[0].lower() and lines[1].lower().split() == ["left", "right"], lines
    assert ocr.read(Image.new("RGB", (200, 100), "white")) == ""


def test_ocr_recognises_at_most_max_boxes_text_boxes() -> None:
    """A page dense with words costs at most `max_boxes` recognitions (one per box), however much text it holds."""
    image = Image.new("RGB", (1200, 900), "white")
    draw = ImageDraw.Draw(image)
    for row in range(12):
        for col in range(6):
            draw.text((20 + col * 195, 20 + row * 72), f"word{row * 6 + col}", font=font(), fill="black")
    capped = OcrReader(max_boxes=10).read(image).split()
    assert 0 < len(capped) <= 10, capped
    assert len(OcrReader().read(image).split()) > 40  # the default reads the page


def test_join_lines_groups_boxes_into_lines() -> None:
    def box(x0, y0, x1, y1):
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    result = [
        [box(300, 52, 400, 80), "world", 0.9],  # same line as "hello", detected first
        [box(10, 50, 120, 78), "hello", 0.9],
        [box(10, 100, 200, 130), "second line", 0.9],
        [box(10, 5, 90, 30), "title", 0.9],
        [box(10, 140, 50, 160), "  ", 0.9],
    ]
    assert join_lines(result) == "title\nhello world\nsecond line"
    assert join_lines([]) == ""


# ---- The OCR stand-in ----------------------------------------------------------------------------------------------


def test_stand_in_answers_prompt_with_image(stand_in: OcrChatMLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    generate = stand_in.chat.generate

    def spy(conversations, max_new_tokens):
        seen.extend(conversations)
        return generate(conversations, max_new_tokens)

    monkeypatch.setattr(stand_in.chat, "generate", spy)
    image = render(["Steps to make a cake"])
    start = time.perf_counter()
    answers = stand_in.generate(
        ["What does the picture say? Answer briefly.", "What is the capital of France?"], [image, None], [12, 8]
    )
    print(f"stand-in: {time.perf_counter() - start:.1f} s for a batch of 2 (12 and 8 tokens): {answers}")
    assert len(answers) == 2 and all(isinstance(a, str) and a.strip() for a in answers)
    assert "cake" in seen[0][-1]["content"].lower()  # the OCR text reached the prompt
    assert "image" not in seen[1][-1]["content"].lower()  # text-only: no image line
    assert len(stand_in.chat.tokenizer(answers[1])["input_ids"]) <= 9


def test_stand_in_empty_batch_and_mismatch(stand_in: OcrChatMLLM) -> None:
    assert stand_in.generate([], [], []) == []
    with pytest.raises(ValueError, match="batch lengths differ"):
        stand_in.generate(["a", "b"], [None], [4, 4])


# ---- The Hugging Face image-text-to-text path, on a tiny random LLaVA ---------------------------------------------


def test_tiny_llava_text_and_image_in_one_batch(tiny_llava_dir: Path) -> None:
    model = HFImageTextToText(tiny_llava_dir)
    assert model.device.type in ("cpu", "cuda")
    assert "<image>" in model.prompt_text("hi", True) and "<image>" not in model.prompt_text("hi", False)
    photo = Image.effect_noise((64, 48), 50).convert("RGB")
    prompts = ["Describe the image.", "Hello there, how are you?", "What is in this picture?"]
    images = [photo, None, render(["Steps to make a cake"])]
    limits = [6, 4, 3]
    answers = model.generate(prompts, images, limits)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    for answer, limit in zip(answers, limits, strict=True):
        assert len(model.tokenizer(answer, add_special_tokens=False)["input_ids"]) <= limit + 2
    # left padding: a request answers the same alone as inside the batch
    assert model.generate(prompts[1:2], [None], [4]) == answers[1:2]
    assert model.generate(prompts[:1], images[:1], [6]) == answers[:1]
    assert model.generate(["Only text here."], [None], [3])[0] is not None


def test_load_mllm_picks_the_backend(tiny_llava_dir: Path, smollm2_dir: Path) -> None:
    assert isinstance(load_mllm(str(tiny_llava_dir), smollm2_dir), HFImageTextToText)
    assert isinstance(load_mllm("", smollm2_dir), OcrChatMLLM)
    assert isinstance(load_mllm(None, smollm2_dir), OcrChatMLLM)


# ---- Settings and request parsing (what model_repository/mllm/1/model.py does per request) ---------------------------


def obj(*values) -> np.ndarray:
    out = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        out[i, 0] = v
    return out


TRUNCATED_PNG = png(Image.effect_noise((64, 64), 60).convert("RGB"))[:300]
SETTINGS = MllmSettings(max_image_bytes=100_000, max_image_pixels=640 * 480)


def test_settings_from_parameters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert MllmSettings.from_parameters({}) == MllmSettings()
    s = MllmSettings.from_parameters({"default_max_tokens": "32", "max_tokens_limit": "100", "model_path": ""})
    assert (s.default_max_tokens, s.max_tokens_limit, s.model_path) == (32, 100, "")
    monkeypatch.delenv("MLLM_MODEL_PATH", raising=False)
    assert MllmSettings.from_parameters({"model_path": "${MLLM_MODEL_PATH}"}).model_path == ""
    monkeypatch.setenv("MLLM_MODEL_PATH", "/models/llava")
    assert MllmSettings.from_parameters({"model_path": "${MLLM_MODEL_PATH}"}).model_path == "/models/llava"
    with pytest.raises(ValueError, match="max_tokens_limit"):
        MllmSettings.from_parameters({"max_tokens_limit": "many"})
    with pytest.raises(ValueError, match="default_max_tokens"):
        MllmSettings.from_parameters({"default_max_tokens": "600", "max_tokens_limit": "512"})
    # paths: relative to the model repository root (the parent of the model's own folder)
    repo = tmp_path / "repo"
    (repo / "mllm").mkdir(parents=True)
    (repo / "weights" / "llava").mkdir(parents=True)
    model_dir = repo / "mllm"
    s = MllmSettings(model_path="weights/llava", weights_dir="../artifacts/x")
    assert s.resolved_model_path(model_dir) == str((repo / "weights" / "llava").resolve())
    assert s.resolved_weights_dir(model_dir) == (tmp_path / "artifacts" / "x").resolve()
    assert MllmSettings(model_path="org/hub-model").resolved_model_path(model_dir) == "org/hub-model"
    assert MllmSettings().resolved_model_path(model_dir) == ""


def test_parse_good_requests() -> None:
    image = png(render(["hello"]))
    rows = parse_mllm_request({"text_input": obj(b"What does it say?"), "image": obj(image)}, SETTINGS)
    assert len(rows) == 1 and rows[0].prompt == "What does it say?" and rows[0].image.mode == "RGB"
    assert rows[0].max_tokens == SETTINGS.default_max_tokens
    rows = parse_mllm_request(
        {"text_input": obj(b"a", b"b"), "max_tokens": np.array([[5], [7]], dtype=np.int32)}, SETTINGS
    )
    assert [(r.prompt, r.image, r.max_tokens) for r in rows] == [("a", None, 5), ("b", None, 7)]
    # an image with an empty prompt is a fair question ("describe this")
    assert parse_mllm_request({"text_input": obj(b""), "image": obj(image)}, SETTINGS)[0].prompt == ""


@pytest.mark.parametrize(
    "inputs,match",
    [
        ({}, "missing required input 'text_input'"),
        ({"text_input": obj(b"\xff\xfe bad")}, "text_input.*not valid UTF-8"),
        ({"text_input": obj(b"  ")}, "text_input' is empty"),
        ({"text_input": obj(b"hi"), "image": obj(b"")}, "image' is empty"),
        ({"text_input": obj(b"hi"), "image": obj(TRUNCATED_PNG)}, "image'.*truncated or corrupt"),
        ({"text_input": obj(b"hi"), "image": obj(b"not an image at all!")}, "image'.*not a PNG, JPEG or WebP"),
        ({"text_input": obj(b"hi"), "max_tokens": np.array([[0]], dtype=np.int32)}, "between 1 and 512, got 0"),
        ({"text_input": obj(b"hi"), "max_tokens": np.array([[513]], dtype=np.int32)}, "between 1 and 512, got 513"),
        ({"text_input": obj(b"hi"), "max_tokens": np.array([[1.5]])}, "must be an integer"),
        ({"text_input": obj(b"a", b"b"), "max_tokens": np.array([[5]], dtype=np.int32)}, "1 rows but text_input has 2"),
        ({"text_input": obj(b"a", b"b"), "image": obj(b"x", b"y")}, "'image' row 0"),
        ({"text_input": obj("x" * 40_000)}, "40000 bytes; the limit is 32768"),
        ({"text_input": np.array([[b"a", b"b"]], dtype=object)}, r"shape \[1, 2\]"),
    ],
)
def test_parse_bad_requests(inputs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_mllm_request(inputs, SETTINGS)


def test_parse_refuses_too_large_images() -> None:
    big = png(Image.effect_noise((700, 500), 60).convert("RGB"))
    with pytest.raises(InputError, match="image'.*too large"):
        parse_mllm_request({"text_input": obj(b"hi"), "image": obj(big)}, SETTINGS)
