"""How a (prompt, response) pair becomes the harm detector's input.

Training, ONNX export, the `harm_tokenizer` Triton model and the evaluation all call `encode_pairs` (serving and the
evaluation through `encode_windows`, which is the same for every pair that fits), so the detector is scored on exactly
the text layout it was trained on (the reference code trained on question + answer but scored the answer alone).
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
# A pair longer than MAX_LENGTH is read in windows of MAX_LENGTH tokens (`encode_windows`): until session 22 everything
# after the first ~450 answer tokens went unread, and a harmful answer behind 450 words of harmless text was released
# (flagged: 198 of 395 harmful validation answers truncated, 352 read in windows). Consecutive windows share this many
# answer tokens, so a passage that a window boundary cuts is still read whole in one of them.
WINDOW_OVERLAP = 128
# The most windows one pair is read in: ~2,900 answer tokens (~2,200 English words), six times an MLLM answer at
# max_tokens_limit. A longer answer is refused with an error (the protector then fails closed), never half read.
MAX_WINDOWS = 8

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
    enc = _tokenize(tokenizer, prompts, responses, max_length)
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


def _tokenize(tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], max_length: int, **extra: Any):
    """The one tokenizer call of `encode_pairs` and `encode_windows`: normalised text, clipped prompt, only the
    response truncated, client text never read as control tokens."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    clipped = [_clip(tokenizer, normalize(p), MAX_PROMPT_TOKENS) for p in prompts]
    return tokenizer(clipped, [normalize(r) for r in responses], truncation="only_second", max_length=max_length,
                     padding="longest", return_tensors="np", split_special_tokens=True, **extra)


# An answer this long (in characters) may fill more than one window. Scored in one request with short answers, it would
# pad every row of that request to its windows (8 answers with one long one: 9x the time and +1.9 GB in fp32).
LONG_ANSWER_CHARS = 1500


def detector_requests(responses: Sequence[str]) -> list[list[int]]:
    """How a caller splits a batch of answers into harm_detector requests (indices): the short ones together, each
    long one alone (and an answer the detector refuses as too long then fails alone)."""
    short = [i for i, r in enumerate(responses) if len(r) < LONG_ANSWER_CHARS]
    return ([short] if short else []) + [[i] for i, r in enumerate(responses) if len(r) >= LONG_ANSWER_CHARS]


def encode_windows(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    max_length: int = MAX_LENGTH,
    overlap: int = WINDOW_OVERLAP,
    max_windows: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`encode_pairs`, with the whole of every answer read: (features, windows per pair).

    A pair that fits in `max_length` tokens is its `encode_pairs` row. A longer one becomes `n` windows
    `[CLS] prompt [SEP] part [SEP]` of exactly `max_length` tokens, the parts overlapping by `overlap` tokens, laid
    end to end in its row: `[pairs, n * max_length]`, the rows of shorter pairs padded (mask 0). The classifier graph
    scores each window and keeps the highest score (`export/detector_onnx.add_windows`). With `max_windows`, a row
    keeps at most that many windows (the count returned is the true one, for the caller to refuse the pair).
    """
    enc = _tokenize(tokenizer, prompts, responses, max_length, return_overflowing_tokens=True, stride=overlap)
    pair_of = np.asarray(enc.pop("overflow_to_sample_mapping"))
    windows = np.bincount(pair_of, minlength=len(prompts))
    feats = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
    if len(prompts) == 0 or windows.max() == 1:
        return feats, windows
    slot = np.arange(len(pair_of)) - np.searchsorted(pair_of, pair_of)  # window index within its pair
    if max_windows is not None:
        keep = slot < max_windows
        pair_of, slot, feats = pair_of[keep], slot[keep], {k: v[keep] for k, v in feats.items()}
    width = int(slot.max() + 1) * max_length
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    out = {k: np.full((len(prompts), width), pad_id if k == "input_ids" else 0, np.int64) for k in feats}
    for k, arr in feats.items():
        for row, (pair, w) in enumerate(zip(pair_of, slot, strict=True)):
            out[k][pair, w * max_length : w * max_length + arr.shape[1]] = arr[row]
    return out, windows


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
    """`text` cut after its first `max_tokens` tokens, at a character offset: decoding the ids instead wrote each
    unknown character back as the five letters "[UNK]", four tokens when read again."""
    enc = tokenizer(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return text
    return text[: enc["offset_mapping"][max_tokens - 1][1]]
