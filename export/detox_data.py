"""Training pairs for the detoxifier: (question, answer) -> the answer it should give instead.

    python -m mllm_protector.export.detox_data      # counts per split, source and category (data/DETOX_DATA_CARD.md)

- Harmful answers written by people or other models (`harm_data`: PyRIT harm / objective sets, many-shot Q&A, and
  their story / role-play wrapped copies) -> a **safe redirect** written by rule: it declines the harmful part in one
  sentence naming the request, says why in words that fit the hazard category, offers the safe, general angle of the
  same topic, and points to legitimate help where there is one (crisis lines, responsible disclosure, emergency
  services, a professional). It never repeats anything from the harmful answer.
- Benign answers (`data/benign_answers.jsonl`: the homonym and safe-context traps the detector may still flag) ->
  the same answer, unchanged: a false alarm must not cost the user a good answer.

The splits are the detector's (`harm_data.split_of(group)`, whole prompt groups), so the detoxifier's held-out
objectives are the detector's held-out objectives too. Deterministic: template choice by a hash of the record.
PyRIT's own "safe" (human score <= 0.25) answers are not used as targets: many are compliant or off-topic.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from mllm_protector.harm_data import load_split, source_family
from mllm_protector.prompts import CATEGORY_HELP

HUMAN_SOURCES = ("pyrit_harm", "pyrit_objective", "pyrit_many_shot")

# Why the harmful part is declined, and the safe angle offered instead, per hazard category (harm_data.TAXONOMY).
_CATEGORY_TEXT: dict[str, tuple[str, str]] = {
    "violent_crimes": (
        "it could help someone hurt people",
        "I can talk about how violence is prevented, how communities and the law respond to it, or where victims find "
        "support.",
    ),
    "nonviolent_crimes": (
        "it would help someone break the law and harm others",
        "I can explain how this kind of crime works in general terms, how people protect themselves from it and what "
        "the law says.",
    ),
    "cyber": (
        "it could be used to attack systems or people's data",
        "I can explain, in general terms, how such attacks are detected and defended against.",
    ),
    "sexual_content": (
        "it is explicit or exploitative sexual content",
        "I can help with respectful, non-explicit information about relationships, consent or health.",
    ),
    "cbrne": (
        "weapons that can cause mass harm are too dangerous to explain",
        "I can share the history, the safety rules and how such weapons are controlled by law and treaties.",
    ),
    "self_harm": (
        "it could put your life or health at risk",
        "I can talk about coping strategies and what helps people through a hard time.",
    ),
    "hate": (
        "it attacks or demeans people for who they are",
        "I can explain the history and effects of such prejudice, or help write about the topic respectfully.",
    ),
    "specialized_advice": (
        "giving it without knowing your situation could cause real harm",
        "I can give general background and the questions worth asking.",
    ),
    "privacy": (
        "it would expose or track a private person",
        "I can explain how people protect their own personal information and privacy.",
    ),
    "ip": (
        "it would copy or get around protection of someone else's work",
        "I can summarise the work in my own words or point to legitimate ways to access it.",
    ),
    "misinformation": (
        "it would spread false or misleading claims",
        "I can share what reliable sources say on the topic and how to check a claim.",
    ),
}
_DEFAULT_TEXT = (
    "it could cause real harm",
    "I'm happy to help with a safe, general question on the same topic.",
)
_OPENINGS = (
    "I can't help with {task}, because {why}.",
    "I won't provide that: {task} is something I can't assist with, because {why}.",
    "I'm not able to help with {task}, since {why}.",
    "Sorry, I can't give details on {task}: {why}.",
)


def _task(prompt: str) -> str:
    """A short request quoted, a long one (or none) named: a long quote would crowd out the redirect."""
    text = " ".join(prompt.split()).rstrip("?.!")
    return f'"{text}"' if 0 < len(text) <= 60 else "this request"


def safe_target(prompt: str, category: str, key: str) -> str:
    """The rule-written safe redirect for a harmful answer to `prompt` in `category`."""
    why, alternative = _CATEGORY_TEXT.get(category, _DEFAULT_TEXT)
    h = int(hashlib.sha1(key.encode()).hexdigest(), 16)
    opening = _OPENINGS[h % len(_OPENINGS)].format(task=_task(prompt), why=why)
    parts = [opening, alternative]
    if category in CATEGORY_HELP:
        parts.append(CATEGORY_HELP[category])
    return " ".join(parts)


def pairs(split: str, benign_share: float = 0.2) -> list[dict]:
    """Training pairs of one split: {prompt, answer, target, kind, category, source, group}."""
    harmful, benign = [], []
    for r in load_split(split, include_benign=True):
        family = source_family(r["source"])
        if r["label"] == 1 and family.split("+")[0] in HUMAN_SOURCES:
            harmful.append({"prompt": r["prompt"], "answer": r["response"], "kind": "harmful",
                            "target": safe_target(r["prompt"], r["category"], r["id"]),
                            "category": r["category"], "source": family, "group": r["group"]})
        elif r["label"] == 0 and family == "benign_smollm2":
            benign.append({"prompt": r["prompt"], "answer": r["response"], "target": r["response"], "kind": "benign",
                           "category": r["category"], "source": family, "group": r["group"]})
    keep = int(len(harmful) * benign_share / (1 - benign_share))
    return harmful + benign[:keep]


def markdown_counts() -> str:
    lines = ["| split | harmful -> safe redirect | benign -> unchanged |", "|---|---|---|"]
    for split in ("train", "val", "test"):
        kinds = Counter(p["kind"] for p in pairs(split))
        lines.append(f"| {split} | {kinds['harmful']} | {kinds['benign']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_counts())
    train = pairs("train")
    print()
    print(Counter(p["category"] for p in train if p["kind"] == "harmful").most_common())
    print(Counter(p["source"] for p in train).most_common())
