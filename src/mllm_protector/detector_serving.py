"""The `harm_tokenizer` Triton model's logic: a whole batch of (prompt, response) requests in one `encode_pairs` call.

Each request carries `text_input` (the prompt; optional, may be empty) and `response` as STRING tensors of shape
`[rows, 1]`. All valid rows are tokenised together, then split back per request and trimmed to that request's own
longest sequence (optionally rounded up to a multiple, so that a native-backend classifier, which only batches
requests of equal shape, sees few distinct lengths). A request with a missing `response` or invalid UTF-8 gets an
`InputError` of its own; the others are served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mllm_protector import tensors
from mllm_protector.detector_text import MAX_LENGTH, encode_pairs
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
) -> list[dict[str, np.ndarray] | InputError]:
    """Tokenise a Triton batch with one `encode_pairs` call; per request its INT64 `[rows_i, seq_i]` features or the
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
    enc = encode_pairs(tokenizer, prompts, responses, max_length=max_length)
    lengths = enc["attention_mask"].sum(axis=1)
    width = enc["input_ids"].shape[1]
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    for i, start, n in spans:
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
