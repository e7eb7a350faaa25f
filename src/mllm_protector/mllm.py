"""The multimodal LLM behind the `mllm` Triton model: two backends, one interface.

`generate(prompts, images, max_tokens) -> answers` takes a whole Triton batch at once (`images[i]` is None for a
text-only request) and returns one greedy answer per request, each cut at its own `max_tokens`.

- `HFImageTextToText`: the production path. Any Hugging Face image-text-to-text model folder (LLaVA-1.5,
  Qwen2.5-VL, ...), loaded with `AutoProcessor` + `AutoModelForImageTextToText`, on the GPU when there is one.
- `OcrChatMLLM`: the CPU stand-in, because no vision-language weights can be had here. It is **not** a VLM: it sees
  the image only through the text OCR finds in it (the channel typographic attacks use), and answers with
  SmolLM2-135M-Instruct. Photos without text reach it as "the image contains no readable text".
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from mllm_protector.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageError, decode_image
from mllm_protector.prompts import mllm_messages
from mllm_protector.tensors import InputError, strings


class MLLM(Protocol):
    def generate(
        self, prompts: Sequence[str], images: Sequence[Image.Image | None], max_tokens: Sequence[int]
    ) -> list[str]: ...


def _check_batch(prompts: Sequence[str], images: Sequence[object], max_tokens: Sequence[int]) -> None:
    if not len(prompts) == len(images) == len(max_tokens):
        raise ValueError(
            f"batch lengths differ: {len(prompts)} prompts, {len(images)} images, {len(max_tokens)} limits"
        )
    if any(int(n) < 1 for n in max_tokens):
        raise ValueError("max_tokens must be at least 1")


class OcrChatMLLM:
    """CPU stand-in for an MLLM: OCR text of the image + the prompt, answered by a small chat LM (SmolLM2-Instruct).

    Not a vision-language model: it reads only the text rendered in an image.
    """

    def __init__(
        self,
        model_dir: str | Path,
        ocr=None,
        max_ocr_chars: int = 2000,
        max_input_tokens: int = 1024,
        threads: int | None = None,
    ) -> None:
        from mllm_protector.ocr import OcrReader
        from mllm_protector.textgen import ChatGenerator

        self.chat = ChatGenerator(model_dir, max_input_tokens=max_input_tokens, threads=threads)
        self.ocr = ocr if ocr is not None else OcrReader()
        self.max_ocr_chars = max_ocr_chars

    def read(self, image: Image.Image | None) -> str | None:
        """What the stand-in sees of an image: its OCR text, capped so that the prompt is never truncated away."""
        if image is None:
            return None
        return self.ocr.read(image)[: self.max_ocr_chars]

    def generate(
        self, prompts: Sequence[str], images: Sequence[Image.Image | None], max_tokens: Sequence[int]
    ) -> list[str]:
        _check_batch(prompts, images, max_tokens)
        if not prompts:
            return []
        conversations = [mllm_messages(p, self.read(im)) for p, im in zip(prompts, images, strict=True)]
        return self.chat.generate(conversations, [int(n) for n in max_tokens])


class HFImageTextToText:
    """Any Hugging Face image-text-to-text model: chat template with an image entry, batched greedy generation."""

    def __init__(self, model_path: str | Path, device: str | None = None, dtype=None) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            if self.device.type == "cuda":
                dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            else:
                dtype = torch.float32
        self.processor = AutoProcessor.from_pretrained(model_path)
        self.tokenizer = getattr(self.processor, "tokenizer", None) or self.processor
        # Decoder-only generation over a padded batch needs the padding on the left.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).to(self.device).eval()
        self._lock = threading.Lock()

    def prompt_text(self, prompt: str, has_image: bool) -> str:
        """The model's own chat format for one user turn, with an image placeholder when an image comes along."""
        if getattr(self.processor, "chat_template", None):
            content = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": prompt}]
            return self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        image_token = getattr(self.processor, "image_token", None) or "<image>"
        text = f"{image_token}\n{prompt}" if has_image else prompt
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
            )
        return f"USER: {text}\nASSISTANT:"  # LLaVA-1.5's plain format

    def generate(
        self, prompts: Sequence[str], images: Sequence[Image.Image | None], max_tokens: Sequence[int]
    ) -> list[str]:
        import torch

        _check_batch(prompts, images, max_tokens)
        if not prompts:
            return []
        limits = [int(n) for n in max_tokens]
        texts = [self.prompt_text(p, im is not None) for p, im in zip(prompts, images, strict=True)]
        present = [im.convert("RGB") for im in images if im is not None]
        inputs = self.processor(text=texts, images=present or None, padding=True, return_tensors="pt")
        inputs = inputs.to(self.device, dtype=self.model.dtype)  # dtype applies to floating tensors only
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=max(limits),
                do_sample=False,
                num_beams=1,
                # greedy: drop the sampling settings many hub generation_config.json files carry (else a warning
                # per call)
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = out[:, inputs["input_ids"].shape[1]:].cpu()
        return [
            self.tokenizer.decode(row[:limit], skip_special_tokens=True).strip()
            for row, limit in zip(new_tokens, limits, strict=True)
        ]


def load_mllm(
    model_path: str | Path | None, default_dir: str | Path, *, device: str | None = None, threads: int | None = None
) -> MLLM:
    """The Hugging Face model at `model_path`; the OCR stand-in on the SmolLM2 folder `default_dir` if it is empty."""
    if model_path is not None and str(model_path).strip():
        if threads:
            import torch

            torch.set_num_threads(threads)
        return HFImageTextToText(str(model_path).strip(), device=device)
    return OcrChatMLLM(default_dir, threads=threads)


# ---- The `mllm` Triton model's parameters and requests (used by model_repository/mllm/1/model.py) ----------------


@dataclass(frozen=True)
class MllmSettings:
    """The `mllm` config parameters (config.pbtxt documents each)."""

    model_path: str = ""
    weights_dir: str = "../artifacts/smollm2-135m-instruct"
    default_max_tokens: int = 64
    max_tokens_limit: int = 512
    max_prompt_bytes: int = 32_768
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    threads: int = 0

    @classmethod
    def from_parameters(cls, params: Mapping[str, str]) -> MllmSettings:
        kwargs: dict[str, Any] = {}
        for name, field in cls.__dataclass_fields__.items():
            value = _expand_env(params.get(name, "")).strip()
            if value == "":
                continue
            try:
                kwargs[name] = type(field.default)(value)
            except ValueError:
                kind = type(field.default).__name__
                raise ValueError(f"mllm parameter {name}={value!r} is not a valid {kind}") from None
        settings = cls(**kwargs)
        if not 1 <= settings.default_max_tokens <= settings.max_tokens_limit:
            raise ValueError(
                f"mllm parameter default_max_tokens={settings.default_max_tokens} must be between 1 and "
                f"max_tokens_limit={settings.max_tokens_limit}"
            )
        return settings

    def resolved_model_path(self, model_dir: str | Path) -> str:
        """`model_path` as a folder: absolute, or relative to the model repository root (the model folder's
        parent). A relative value that is no folder there is passed on unchanged (a hub id, for online hosts)."""
        if not self.model_path:
            return ""
        path = Path(self.model_path).expanduser()
        if path.is_absolute():
            return str(path)
        local = (Path(model_dir).parent / path).resolve()
        return str(local) if local.exists() else self.model_path

    def resolved_weights_dir(self, model_dir: str | Path) -> Path:
        path = Path(self.weights_dir).expanduser()
        return path if path.is_absolute() else (Path(model_dir).parent / path).resolve()


def _expand_env(value: str) -> str:
    """`${NAME}` -> the environment variable NAME, or "" when unset (so a deployment can set MLLM_MODEL_PATH)."""
    return re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), value)


@dataclass
class MllmRequest:
    prompt: str
    image: Image.Image | None
    max_tokens: int


def parse_mllm_request(inputs: Mapping[str, np.ndarray | None], settings: MllmSettings) -> list[MllmRequest]:
    """One Triton request's tensors (name -> array, None if not sent) as one `MllmRequest` per row.

    Raises `InputError` naming the input (and row, for multi-row requests) and what was wrong with it.
    """
    texts = _rows(inputs.get("text_input"), "text_input")
    if texts is None:
        raise InputError("missing required input 'text_input'")
    prompts = strings(texts, "text_input")
    count = len(prompts)
    images = _rows(inputs.get("image"), "image", count)
    limits = _rows(inputs.get("max_tokens"), "max_tokens", count)
    rows = []
    for i, prompt in enumerate(prompts):
        image = None
        if images is not None:
            data = images[i]
            if isinstance(data, str):
                data = data.encode("utf-8")
            if not isinstance(data, bytes | bytearray | memoryview | np.bytes_):
                raise InputError(f"{_where('image', i, count)} must be a STRING (BYTES) value")
            if not bytes(data):
                raise InputError(f"{_where('image', i, count)} is empty: omit the input to send no image")
            try:
                image = decode_image(bytes(data), settings.max_image_bytes, settings.max_image_pixels)
            except ImageError as e:
                raise InputError(f"{_where('image', i, count)}: {e}") from None
        if not prompt.strip() and image is None:
            raise InputError(f"{_where('text_input', i, count)} is empty (and no image was sent)")
        size = len(prompt.encode("utf-8"))
        if size > settings.max_prompt_bytes:
            limit = settings.max_prompt_bytes
            raise InputError(f"{_where('text_input', i, count)} is {size} bytes; the limit is {limit}")
        tokens = settings.default_max_tokens
        if limits is not None:
            value = limits[i]
            if not isinstance(value, int | np.integer):
                raise InputError(f"{_where('max_tokens', i, count)} must be an integer (INT32)")
            tokens = int(value)
            if not 1 <= tokens <= settings.max_tokens_limit:
                raise InputError(
                    f"{_where('max_tokens', i, count)} must be between 1 and {settings.max_tokens_limit}, got {tokens}"
                )
        rows.append(MllmRequest(prompt, image, tokens))
    return rows


def _where(name: str, row: int, count: int) -> str:
    return f"input '{name}'" if count == 1 else f"input '{name}' row {row}"


def _rows(array: np.ndarray | None, name: str, count: int | None = None) -> np.ndarray | None:
    if array is None:
        return None
    array = np.asarray(array)
    if array.ndim == 0 or array.size == 0:
        raise InputError(f"input '{name}' is empty: send one element per request")
    if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        raise InputError(f"input '{name}' has shape {list(array.shape)}: expected one element per row ([1])")
    flat = array.reshape(-1)
    if count is not None and len(flat) != count:
        raise InputError(f"input '{name}' has {len(flat)} rows but text_input has {count}")
    return flat
