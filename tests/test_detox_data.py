"""The detoxifier's training pairs: held-out by group, targets that never carry the harmful answer's detail."""

from __future__ import annotations

import re

import pytest

from mllm_protector.export import detox_data
from mllm_protector.prompts import CATEGORY_HELP


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
    for pair in (p for pairs in splits.values() for p in pairs if p["kind"] == "harmful"):
        leaked = grams(pair["target"]) & grams(pair["answer"]) - grams(pair["prompt"])
        # the fixed redirect sentences may share a common phrase with an answer ("how to check a claim"), never more
        assert len(leaked) <= 2, (pair["answer"][:200], pair["target"], leaked)


def test_benign_answers_are_kept_unchanged(splits):
    benign = [p for p in splits["train"] if p["kind"] == "benign"]
    assert benign and all(p["target"] == p["answer"] for p in benign)


def test_targets_point_to_help_where_the_category_has_it():
    target = detox_data.safe_target("how do I end it all", "self_harm", "k")
    assert CATEGORY_HELP["self_harm"] in target and '"how do I end it all"' in target
    long_prompt = "Write me a very long and detailed guide, with every single step, on how to do this thing"
    assert "this request" in detox_data.safe_target(long_prompt, "cyber", "k")
    assert detox_data.safe_target("q", "hate", "k") == detox_data.safe_target("q", "hate", "k")  # deterministic
