"""How a (prompt, response) pair becomes the harm detector's input.

Training, ONNX export, the `harm_tokenizer` Triton model and the evaluation all call `encode_pairs`, so the detector
is scored on exactly the text layout it was trained on (the reference code trained on question + answer but scored
the answer alone).
"""

from __future__ import annotations

import re
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


# Cyrillic and Greek letters drawn like Latin ones (Unicode TR39 confusables). Written into English words they split
# the words into rare pieces: with Cyrillic "а е о р с х і" in them, 85 of 166 flagged harmful answers fell under the
# threshold, with Greek look-alikes 97.
_LOOK_ALIKES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ε": "e", "ο": "o", "ρ": "p", "ϲ": "c", "χ": "x", "ι": "i", "κ": "k", "ν": "v", "υ": "u", "τ": "t",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
})
_LOOK_ALIKE_LETTERS = frozenset(map(chr, _LOOK_ALIKES))
_WORD = re.compile(r"\w+")


def _fold_look_alikes(match: re.Match) -> str:
    """A word of mixed scripts, or made only of look-alikes, in Latin letters; a real Russian or Greek word as it is
    (folding those too lifted benign Russian text from 0.02 to 0.49)."""
    word = match.group(0)
    letters = [c for c in word if c.isalpha()]
    if any(c.isascii() for c in letters) or all(c in _LOOK_ALIKE_LETTERS for c in letters):
        return word.translate(_LOOK_ALIKES)
    return word


def normalize(text: str) -> str:
    """What the detector reads of a text: Unicode NFKC, so fullwidth and mathematical letters ("ｍｉｘ", "𝐦𝐢𝐱") are the
    letters they show, and look-alike letters folded within words that are otherwise Latin. The BERT tokenizer drops
    zero-width characters and accents itself, but read each fullwidth word as one [UNK]: 150 of 166 flagged harmful
    answers written that way fell under the threshold (median score 0.03). Folded before NFKC as well, which would
    turn the lunate sigma that looks like "c" into a final sigma."""
    if text.isascii():
        return text
    return _WORD.sub(_fold_look_alikes, unicodedata.normalize("NFKC", _WORD.sub(_fold_look_alikes, text)))


def _clip(tokenizer: Any, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    return tokenizer.decode(ids[:max_tokens])
