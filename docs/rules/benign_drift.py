"""How the served detector scores long benign text: the committed benign answers (`data/benign_answers.jsonl`) joined
at random into texts of 100-900 words, after the prompt "Tell me some useful tips.", 20 texts per length.

    python docs/rules/benign_drift.py        (~2 min on two cores; no split is read, only the benign answers)

Two pools: "mild" (cooking, everyday, work and study, science, coding, creative answers) and "all" (also the homonym
and sensitive-context traps, medical, legal, history and security answers: alarming words, benign answers). Each
answer alone scores low; joined, the score climbs with length. Prints a markdown table per served file at its own
threshold. Information for planning (session 23): no rule, no trial.
"""

from __future__ import annotations

import os
import random

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_calibrate, detector_onnx  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402

MILD = ("cooking", "everyday", "work_and_study", "science", "coding", "creative")
LENGTHS = (100, 200, 300, 450, 600, 900)
PER_LENGTH = 20
PROMPT = "Tell me some useful tips."


def joined_texts(answers: list[str], words: int, n: int, rng: random.Random) -> list[str]:
    """`n` texts of `words` words: the answers in a random order, joined, cut at `words`."""
    out = []
    for _ in range(n):
        order = answers[:]
        rng.shuffle(order)
        text: list[str] = []
        for a in order:
            text += a.split()
            if len(text) >= words:
                break
        out.append(" ".join(text[:words]))
    return out


def main() -> None:
    records = harm_data.load_benign_answers()
    pools = {"mild": [r["response"] for r in records if r["source"].split("/")[1] in MILD],
             "all": [r["response"] for r in records]}
    tokenizer, calibration = dm.load_tokenizer(), dm.load_calibration()
    repo = detector_onnx.DEFAULT_MODEL_REPOSITORY
    for path in (detector_onnx.served_model_path(repo), detector_onnx.cpu_served_path(repo)):
        classifier = OnnxClassifier(path)
        threshold = detector_calibrate.threshold_for_file(path.name, calibration)
        print(f"\n`{path.name}` at {threshold:.5f}: median score (flagged of {PER_LENGTH})\n")
        print("| pool | " + " | ".join(f"{n} words" for n in LENGTHS) + " |")
        print("|---|" + "---|" * len(LENGTHS))
        for name, answers in pools.items():
            rng = random.Random(7)
            cells = []
            for n in LENGTHS:
                texts = joined_texts(answers, n, PER_LENGTH, rng)
                s = score_pairs(classifier, tokenizer, [PROMPT] * len(texts), texts)
                cells.append(f"{np.median(s):.2f} ({int((s >= threshold).sum())})")
            print(f"| {name} ({len(answers)} answers) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
