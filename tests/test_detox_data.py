"""The detoxifier's training pairs: held-out by group, targets that never carry the harmful answer's detail."""

from __future__ import annotations

import re

import pytest

from mllm_protector.export import detox_data
from mllm_protector.prompts import CATEGORY_TEXT, first_sentence


def grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {s: detox_data.pairs(s) for s in ("train", "val", "test")}


def test_splits_share_no_prompt_group(splits):
    groups = {s: {p["group"] for p in pairs} for s, pairs in splits.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"]
    assert all(len(pairs) > 20 for pairs in splits.values())


def test_harmful_targets_repeat_nothing_from_the_harmful_answer(splits):
    for pair in (p for pairs in splits.values() for p in pairs):
        leaked = grams(pair["target"]) & grams(pair["answer"]) - grams(pair["prompt"])
        # the fixed reason may share a common phrase with an answer ("could help someone hurt"), never more
        assert len(leaked) <= 2, (pair["answer"][:200], pair["target"], leaked)


def test_targets_are_one_sentence_declines_naming_the_request_and_the_categorys_reason(splits):
    target = detox_data.safe_target("how do I end it all", "self_harm", "k")
    assert '"how do I end it all"' in target and CATEGORY_TEXT["self_harm"][0] in target
    long_prompt = "Write me a very long and detailed guide, with every single step, on how to do this thing"
    assert "this request" in detox_data.safe_target(long_prompt, "cyber", "k")
    assert detox_data.safe_target("q", "hate", "k") == detox_data.safe_target("q", "hate", "k")  # deterministic
    words = sorted(len(p["target"].split()) for p in splits["train"])
    assert words[-1] <= 30  # short: every target word is decode time; the help is added by the pipeline
    assert all(first_sentence(p["target"]) == p["target"] for p in splits["train"])  # what compose_rewrite keeps
