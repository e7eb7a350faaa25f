"""Training pairs for the detoxifier: (question, answer) -> the answer it should give instead.

    python -m mllm_protector.export.detox_data      # counts per split, source and category (data/DETOX_DATA_CARD.md)

- Harmful answers written by people or other models (`harm_data`: PyRIT harm / objective sets, many-shot Q&A, and
  their story / role-play wrapped copies) -> a **decline** written by rule: one sentence naming the request and
  saying why in words that fit the hazard category. It never repeats anything from the harmful answer. The served
  rewrite is that sentence followed by the category's hand-written help and pointer (`prompts.compose_rewrite`), so
  the model is not trained to write them.
- No benign answers: the protector releases a rewrite only when it is no near copy of the flagged answer
  (`guard.is_near_copy`), so a detoxifier that passed a false alarm through unchanged would only cost a second pass.

The splits are the detector's (`harm_data.split_of(group)`, whole prompt groups), so the detoxifier's held-out
objectives are the detector's held-out objectives too. Deterministic: template choice by a hash of the record.
PyRIT's own "safe" (human score <= 0.25) answers are not used as targets: many are compliant or off-topic.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from mllm_protector.harm_data import load_split, source_family
from mllm_protector.prompts import DECLINE_OPENINGS, category_text

HUMAN_SOURCES = ("pyrit_harm", "pyrit_objective", "pyrit_many_shot")


def _task(prompt: str) -> str:
    """A short request quoted, a long one (or none) named: a long quote costs decode time and reads badly."""
    text = " ".join(prompt.split()).rstrip("?.!")
    return f'"{text}"' if 0 < len(text) <= 60 else "this request"


def safe_target(prompt: str, category: str | None, key: str) -> str:
    """The rule-written decline for a harmful answer to `prompt` in `category`: one sentence naming the request and
    why (the pipeline adds the category's help, `prompts.compose_rewrite`)."""
    h = int(hashlib.sha1(key.encode()).hexdigest(), 16)
    return DECLINE_OPENINGS[h % len(DECLINE_OPENINGS)].format(task=_task(prompt), why=category_text(category)[0])


def pairs(split: str) -> list[dict]:
    """Training pairs of one split: {id, prompt, answer, target, category, source, group}."""
    out = []
    for r in load_split(split, include_benign=False):
        family = source_family(r["source"])
        if r["label"] == 1 and family.split("+")[0] in HUMAN_SOURCES:
            out.append({"id": r["id"], "prompt": r["prompt"], "answer": r["response"],
                        "target": safe_target(r["prompt"], r["category"], r["id"]),
                        "category": r["category"], "source": family, "group": r["group"]})
    return out


def markdown_counts() -> str:
    lines = ["| split | harmful answer -> decline |", "|---|---|"]
    lines += [f"| {split} | {len(pairs(split))} |" for split in ("train", "val", "test")]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_counts())
    train = pairs("train")
    print()
    print(Counter(p["category"] for p in train).most_common())
    print(Counter(p["source"] for p in train).most_common())
