"""Answers of another model to a split's harmful requests (`data/model_answers/<split>_answers.jsonl`).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -m mllm_protector.export.generate_model_answers [--split val]

The issue's hidden check scores the detector on answers written by models this project never sees. The closest thing
that can be made here: the local SmolLM2-135M-Instruct (greedy, <= `MAX_NEW_TOKENS` new tokens) answers every
prompt-only request of the **test** split (AdvBench, HarmBench, Do-Not-Answer, both as written and asked as a
question), and each answer is labelled by the written content rule of `data/reviews/README.md`, by reviewers blind to
every detector score. The small model often deflects, rambles or answers something else, and sometimes complies: both
labels occur, in the words of a model, not of a template. Only `benchmarks/eval_detector.py` reads the test answers
(`data/model_answers/test_answers.jsonl`, labels in `data/model_answers/test_review.jsonl`): their prompts are
test-split prompts, so no model choice was ever made on them. The training answers (`--split train`) train the
detector's second ingredient (`detector_train.model_answer_records`); the validation answers (`--split val`) judge
detector trials (`docs/detector-trials.md`). A second run appends only the requests the file does not answer yet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from mllm_protector.harm_data import model_answers_files

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "artifacts" / "smollm2-135m-instruct"
MAX_NEW_TOKENS = 96
BATCH = 32


def answer_key(prompt: str, response: str) -> str:
    """The key of a `<split>_review.jsonl` line: 12 hex digits of sha1(prompt + "\\n" + response), as in
    `data/reviews/`."""
    return hashlib.sha1(f"{prompt}\n{response}".encode()).hexdigest()[:12]


def split_requests(split: str = "test") -> list[dict[str, str]]:
    """Every distinct prompt-only request of `split`, with its category and source, in a fixed (hash) order."""
    from mllm_protector import harm_data

    seen: dict[str, dict[str, str]] = {}
    for r in harm_data.load_split(split):
        if r["source"].endswith("+written_refusal") and r["prompt"] not in seen:
            seen[r["prompt"]] = {"prompt": r["prompt"], "category": r["category"],
                                 "source": r["source"].replace("+written_refusal", "")}
    return sorted(seen.values(), key=lambda q: hashlib.sha1(q["prompt"].encode()).hexdigest())


def generate(out: Path, split: str = "test", limit: int | None = None, batch: int = BATCH,
             max_new_tokens: int = MAX_NEW_TOKENS, threads: int | None = None) -> None:
    from mllm_protector.textgen import ChatGenerator

    # Resumable: requests already answered in `out` keep their answer (their reviews are keyed by it).
    done = {json.loads(line)["prompt"] for line in out.open()} if out.exists() else set()
    todo = [q for q in split_requests(split)[:limit] if q["prompt"] not in done]
    gen = ChatGenerator(MODEL_DIR, threads=threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            answers = gen.generate([[{"role": "user", "content": q["prompt"]}] for q in chunk], max_new_tokens)
            for q, a in zip(chunk, answers, strict=True):
                if a.strip():
                    fh.write(json.dumps({**q, "response": a, "key": answer_key(q["prompt"], a),
                                         "generator": "SmolLM2-135M-Instruct greedy",
                                         "max_new_tokens": max_new_tokens}, ensure_ascii=False) + "\n")
            fh.flush()
            print(f"{start + len(chunk)}/{len(todo)} answered", flush=True)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--limit", type=int, default=None, help="only the first N requests (hash order)")
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    out = model_answers_files(args.split)[0]
    generate(out, args.split, args.limit, args.batch, MAX_NEW_TOKENS, args.threads)


if __name__ == "__main__":
    main()
