"""The `harm_tokenizer` Triton model's logic: a whole batch of (prompt, response) requests in one `encode_windows` call.

Each request carries `text_input` (the prompt; optional, may be empty) and `response` as STRING tensors of shape
`[rows, 1]`. All valid rows are tokenised together, then split back per request and trimmed to that request's own
longest sequence (optionally rounded up to a multiple, so that a native-backend classifier, which only batches
requests of equal shape, sees few distinct lengths). A request with a pair longer than one window gets whole
512-token windows instead (`detector_text.encode_windows`). A request with a missing `response`, invalid UTF-8 or
an answer longer than `MAX_WINDOWS` windows gets an `InputError` of its own; the others are served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mllm_protector import tensors
from mllm_protector.detector_text import MAX_LENGTH, MAX_WINDOWS, WINDOW_OVERLAP, encode_windows
from mllm_protector.tensors import InputError

PROMPT_INPUT = "text_input"
RESPONSE_INPUT = "response"


def decode_request(inputs: Mapping[str, np.ndarray | None]) -> tuple[list[str], list[str]]:
    """(prompts, responses) of one request; raises InputError."""
    response = inputs.get(RESPONSE_INPUT)
    responses = tensors.strings(response, RESPONSE_INPUT, required=True)
    prompts = tensors.strings_per_row(inputs.get(PROMPT_INPUT), PROMPT_INPUT, len(responses), required=False)
    return prompts, responses


def encode_requests(
    tokenizer: Any,
    requests: Sequence[Mapping[str, np.ndarray | None]],
    pad_to_multiple_of: int = 1,
    max_length: int = MAX_LENGTH,
    max_windows: int = MAX_WINDOWS,
) -> list[dict[str, np.ndarray] | InputError]:
    """Tokenise a Triton batch with one `encode_windows` call; per request its INT64 `[rows_i, seq_i]` features or the
    `InputError` that rejects it."""
    results: list[dict[str, np.ndarray] | InputError] = []
    prompts: list[str] = []
    responses: list[str] = []
    spans: list[tuple[int, int, int]] = []  # (request index, first row, rows)
    for i, req in enumerate(requests):
        try:
            p, r = decode_request(req)
        except InputError as exc:
            results.append(exc)
            continue
        spans.append((i, len(prompts), len(p)))
        prompts += p
        responses += r
        results.append({})
    if not prompts:
        return results
    enc, windows = encode_windows(tokenizer, prompts, responses, max_length=max_length, max_windows=max_windows)
    lengths = enc["attention_mask"][:, :max_length].sum(axis=1)
    width = enc["input_ids"].shape[1]
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    for i, start, n in spans:
        most = int(windows[start : start + n].max()) if n else 0
        if most > max_windows:
            results[i] = InputError(
                f"response too long for the harm detector: it needs {most} windows of {max_length} tokens, at most "
                f"{max_windows} are read (roughly {max_windows * (max_length - WINDOW_OVERLAP):,} tokens of answer)")
            continue
        if most > 1:  # whole windows, already a multiple of any pad_to_multiple_of that divides max_length
            results[i] = {name: np.ascontiguousarray(arr[start : start + n, : most * max_length])
                          for name, arr in enc.items()}
            continue
        seq = int(lengths[start : start + n].max()) if n else 0
        if pad_to_multiple_of > 1:
            seq = min(-(-seq // pad_to_multiple_of) * pad_to_multiple_of, max(max_length, seq))
        feats = {name: np.ascontiguousarray(arr[start : start + n, : min(seq, width)]) for name, arr in enc.items()}
        if seq > width:  # the whole batch was shorter than the rounded length
            feats = {
                name: np.pad(arr, ((0, 0), (0, seq - width)), constant_values=pad_id if name == "input_ids" else 0)
                for name, arr in feats.items()
            }
        results[i] = feats
    return results
