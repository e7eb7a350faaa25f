"""How a (prompt, response) pair becomes the harm detector's input.

Training, ONNX export, the `harm_tokenizer` Triton model and the evaluation all call `encode_pairs`, so the detector
is scored on exactly the text layout it was trained on (the reference code trained on question + answer but scored
the answer alone).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

# 512 (the encoder's position limit), not 256: at 256 an answer was judged by its first ~190 tokens, so a harmful
# answer behind ~200 words of harmless text went unread (61 % of harmful validation answers released that way;
# 31 % at 512, docs/detector-trials.md). Short answers, the bulk of traffic, cost the same either way.
MAX_LENGTH = 512
# The prompt gets at most this many tokens; the rest of the budget goes to the response, which carries the harm.
MAX_PROMPT_TOKENS = 64

# label index of the classifier head whose probability is the harm score
HARMFUL_LABEL = 1

# The second output of harm_detector, `harm_categories` FP32 [batch, len(HARM_CATEGORIES)]: harm_score times the
# probability of each hazard category of the pair (data/DATA_CARD.md, "Taxonomy"; MLCommons hazards in
# `harm_data.TAXONOMY`). The scores of one answer sum to its harm_score.
HARM_CATEGORIES: tuple[str, ...] = (
    "violent_crimes", "nonviolent_crimes", "cyber", "sexual_content", "cbrne", "self_harm", "hate",
    "specialized_advice", "privacy", "ip", "misinformation",
)


def encode_pairs(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    max_length: int = MAX_LENGTH,
) -> dict[str, np.ndarray]:
    """Tokenise prompt/response pairs as `[CLS] prompt [SEP] response [SEP]`, padded to the longest in the batch.

    An empty prompt is allowed (guard-only callers may not have one): the pair then degrades to the response alone.
    Client text is only ever text: a literal "[PAD]" or "[SEP]" in it is tokenised as the characters it is
    (`split_special_tokens`), not as the control token. Otherwise twenty "[PAD]" in front of a harmful answer (or in
    the prompt) took its score from 0.99 to 0.65, under the threshold, and the answer was released unchanged.
    Text is read after `normalize`.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    clipped = [_clip(tokenizer, normalize(p), MAX_PROMPT_TOKENS) for p in prompts]
    enc = tokenizer(
        clipped,
        [normalize(r) for r in responses],
        truncation="only_second",
        max_length=max_length,
        padding="longest",
        return_tensors="np",
        split_special_tokens=True,
    )
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


def normalize(text: str) -> str:
    """Unicode NFKC: fullwidth and mathematical letters ("ｍｉｘ", "𝐦𝐢𝐱") read as the letters they show. The BERT
    tokenizer drops zero-width characters and accents itself but has no other folding: it read each such word as one
    [UNK], and 150 of 166 flagged harmful answers written that way fell under the threshold (median score 0.03)."""
    return unicodedata.normalize("NFKC", text)


def _clip(tokenizer: Any, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    return tokenizer.decode(ids[:max_tokens])
