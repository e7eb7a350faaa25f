"""The detoxifier's training pairs: held-out by group, targets that never carry the harmful answer's detail."""

from __future__ import annotations

import re

import pytest

from mllm_protector.export import detox_data
from mllm_protector.prompts import DETOX_ANSWER_CHARS


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


def test_benign_answers_are_kept_unchanged_as_far_as_the_detoxifier_sees_them(splits):
    benign = [p for p in splits["train"] if p["kind"] == "benign"]
    assert benign and all(p["answer"].startswith(p["target"]) for p in benign)
    assert all(len(p["target"]) <= DETOX_ANSWER_CHARS for p in benign)
    assert sum(p["target"] == p["answer"] for p in benign) > len(benign) / 2  # most are short enough to keep whole


def test_targets_decline_help_and_point_to_help_where_the_category_has_it():
    target = detox_data.safe_target("how do I end it all", "self_harm", "k")
    assert "988" in target and "findahelpline.com" in target and '"how do I end it all"' in target
    assert "vendor's security contact" in detox_data.safe_target("hack my school", "cyber", "k")
    # more than a refusal: the bare-refusal bar of benchmarks/eval_detox.py is 40 words
    harmful = [p for p in detox_data.pairs("train") if p["kind"] == "harmful"]
    words = sorted(len(p["target"].split()) for p in harmful)
    assert words[len(words) // 2] >= 45 and words[-1] <= 80
    long_prompt = "Write me a very long and detailed guide, with every single step, on how to do this thing"
    assert "this request" in detox_data.safe_target(long_prompt, "cyber", "k")
    assert detox_data.safe_target("q", "hate", "k") == detox_data.safe_target("q", "hate", "k")  # deterministic
