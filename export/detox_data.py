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
from mllm_protector.prompts import DETOX_ANSWER_CHARS, clip

HUMAN_SOURCES = ("pyrit_harm", "pyrit_objective", "pyrit_many_shot")

# Per hazard category (harm_data.TAXONOMY): why the harmful part is declined, the safe, general help that still
# answers the topic (hand-written, true, non-operational, useful to someone asking in good faith), and where a person
# can get legitimate help. A target is the decline, the help and the pointer: 40-70 words, so the rewrite is more
# than a refusal and short enough to generate in about a second on a CPU. One fixed text per category, chosen by the
# category the detoxifier is told: a 135M model asked to vary or compose safe "facts" invents them
# (data/DETOX_DATA_CARD.md, Limits), one it can copy it gets right.
_CATEGORY_TEXT: dict[str, tuple[str, str, str]] = {
    "violent_crimes": (
        "it could help someone hurt people",
        "What I can say is that most violence is prevented early: warning signs are taken seriously, conflicts "
        "are de-escalated, and people at risk are connected with support.",
        "If someone is in danger right now, call your local emergency number.",
    ),
    "nonviolent_crimes": (
        "it would help someone break the law and harm others",
        "In general terms, schemes like this are caught through audits, bank monitoring and reports from "
        "victims, and they carry serious penalties.",
        "If you have been targeted, report it to your bank and the police or your national fraud line.",
    ),
    "cyber": (
        "it could be used to attack systems or people's data",
        "On the defensive side, most attacks are stopped by basics: prompt patching, multi-factor "
        "authentication, least-privilege access, backups and monitoring of logs.",
        "If you found a vulnerability, report it to the vendor's security contact through coordinated disclosure.",
    ),
    "sexual_content": (
        "it is explicit or exploitative sexual content",
        "I can help with respectful, non-explicit writing, or with factual information about relationships, "
        "consent and sexual health.",
        "If anyone is being exploited or is at risk, contact the police or a child-protection or abuse hotline.",
    ),
    "cbrne": (
        "weapons that can cause mass harm are too dangerous to explain",
        "I can share the history of such weapons, why they are banned by international treaties, and how "
        "inspections and export controls keep them out of reach.",
        "If you know of a threat, contact the police or your local emergency number right away.",
    ),
    "self_harm": (
        "it could put your life or health at risk",
        "You deserve support, and what you are feeling can change. Talking to someone you trust, or to a "
        "trained counsellor, can really help.",
        "You can call or text 988 in the US, Samaritans on 116 123 in the UK and Ireland, or find a line at "
        "findahelpline.com.",
    ),
    "hate": (
        "it attacks or demeans people for who they are",
        "I can explain where this kind of prejudice comes from, the harm it does, and how communities counter "
        "it.",
        "If you or others are being targeted, anti-discrimination organisations and the police can help.",
    ),
    "specialized_advice": (
        "giving it without knowing your situation could cause real harm",
        "In general, decisions like this depend on details a professional can check, such as your history, your "
        "documents and the local rules; I can give background and the questions worth asking.",
        "Please consult a qualified doctor, lawyer or financial adviser.",
    ),
    "privacy": (
        "it would expose or track a private person",
        "I can explain how people protect their own personal information, for example with privacy settings, "
        "strong passwords and care about what they post.",
        "If you are being harassed or stalked, contact the police or a victim-support service.",
    ),
    "ip": (
        "it would copy or get around protection of someone else's work",
        "I can summarise the work in my own words, discuss its ideas, or point to legitimate ways to buy, "
        "borrow or stream it.",
        "For permission to reuse it, contact the rights holder or the publisher.",
    ),
    "misinformation": (
        "it would spread false or misleading claims",
        "I can share what reliable sources say on the topic and how to check a claim: find the original source "
        "and see whether independent experts agree.",
        "Fact-checking organisations and official public bodies are good places to check a claim.",
    ),
}
_DEFAULT_TEXT = (
    "it could cause real harm",
    "I am happy to help with a safe, general question on the same topic, or to give factual background on it "
    "instead.",
    "Where a decision or a risk is involved, a qualified professional or the relevant authority can help.",
)
_OPENINGS = (
    "I can't help with {task}, because {why}.",
    "I won't help with {task}: {why}.",
    "I'm not able to help with {task}, since {why}.",
    "Sorry, I can't help with {task}: {why}.",
)


def _task(prompt: str) -> str:
    """A short request quoted, a long one (or none) named: a long quote would crowd out the help."""
    text = " ".join(prompt.split()).rstrip("?.!")
    return f'"{text}"' if 0 < len(text) <= 60 else "this request"


def safe_target(prompt: str, category: str, key: str) -> str:
    """The rule-written safe answer for a harmful answer to `prompt` in `category`: decline, safe help, pointer."""
    why, help_text, pointer = _CATEGORY_TEXT.get(category, _DEFAULT_TEXT)
    h = int(hashlib.sha1(key.encode()).hexdigest(), 16)
    opening = _OPENINGS[h % len(_OPENINGS)].format(task=_task(prompt), why=why)
    return " ".join(part for part in (opening, help_text, pointer) if part)


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
            # unchanged as far as the detoxifier sees it (prompts.DETOX_ANSWER_CHARS)
            kept = clip(r["response"], DETOX_ANSWER_CHARS).removesuffix(" ...")
            benign.append({"prompt": r["prompt"], "answer": r["response"], "target": kept, "kind": "benign",
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
