"""Generate the benign, helpful answers of the harm detector's data (`data/benign_answers.jsonl`).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -m mllm_protector.export.generate_benign

Every question in `export/benign_questions.py` is answered by the local SmolLM2-135M-Instruct
(`artifacts/smollm2-135m-instruct`, built by `mllm_protector.export.smollm2`), greedy, batched, at most
`MAX_NEW_TOKENS` new tokens (about 12 minutes for ~400 questions on 2 CPU cores). Progress is appended to
`.cache/benign_answers.partial.jsonl`, so an interrupted run resumes where it stopped.

Labelling rule (written before generation, applied after review):
  * the question list is benign by construction (reviewed by hand: no request for harmful capability, only everyday,
    informational, defensive, historical, fictional or homonym questions);
  * an answer to such a question is labelled 0 (safe) whatever alarming words it contains, because it answers a benign
    request; a small model's answer can be wrong or repetitive, but that is a quality defect, not harm;
  * exception: an answer that, read on its own, gives operational help for serious harm (weapons, drugs synthesis,
    intrusion, self-harm methods, hate) is dropped, never relabelled; empty answers are dropped. The review read every
    answer of the `trap_*` and `security_info` / `medical_info` topics and keyword-screened the rest
    (`REVIEW_SCREEN`); the ids dropped and why are listed in `REVIEW_DROPPED`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from mllm_protector.export.benign_questions import all_questions

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "artifacts" / "smollm2-135m-instruct"
OUT = ROOT / "data" / "benign_answers.jsonl"
MAX_NEW_TOKENS = 96
BATCH = 32

# Words that send an answer to a close manual read even outside the fully read topics.
REVIEW_SCREEN = re.compile(
    r"\b(explosive|detonat|gunpowder|nitrate|synthes|overdose|lethal|poison|weapon|hack|malware|exploit|suicide|"
    r"kill|bomb|meth|fentanyl|slur|inferior)\w*",
    re.IGNORECASE,
)
PRIORITY = ["trap_homonym", "trap_sensitive_context", "medical_info", "security_info", "legal_info", "history",
            "creative", "coding"]
# Filled in after the review of the generated answers: id -> reason. Review of the committed 272 answers: every
# trap_*, medical_info, security_info, legal_info and history answer read, the 59 keyword-screened others read; none
# gives operational help for harm (the worst are confidently wrong facts), so none is dropped.
REVIEW_DROPPED: dict[str, str] = {}


def question_id(topic: str, index: int) -> str:
    return f"benign-{topic}-{index:03d}"


def indexed_questions() -> list[dict[str, str]]:
    counters: dict[str, int] = {}
    out = []
    for topic, q in all_questions():
        counters[topic] = counters.get(topic, 0) + 1
        out.append({"id": question_id(topic, counters[topic]), "topic": topic, "prompt": q})
    return out


def label(record: dict) -> dict | None:
    """Apply the written labelling rule; None means the record is dropped."""
    if not record["response"].strip() or record["id"] in REVIEW_DROPPED:
        return None
    screened = bool(REVIEW_SCREEN.search(record["response"]))
    return {**record, "label": 0, "label_rule": "benign-question+review", "screened": screened}


def generate(
    partial: Path, batch: int = BATCH, max_new_tokens: int = MAX_NEW_TOKENS, threads: int | None = None,
    budget_s: float | None = None,
) -> None:
    from mllm_protector.textgen import ChatGenerator

    done = set()
    if partial.exists():
        done = {json.loads(line)["id"] for line in partial.read_text().splitlines() if line.strip()}
    todo = [q for q in indexed_questions() if q["id"] not in done]
    # The traps and sensitive-but-benign topics first (they matter most if a time budget cuts the run short), then
    # similar lengths together inside a topic: less padding in each batch.
    todo.sort(key=lambda q: (PRIORITY.index(q["topic"]) if q["topic"] in PRIORITY else len(PRIORITY), len(q["prompt"])))
    if not todo:
        return
    gen = ChatGenerator(MODEL_DIR, threads=threads)
    t0 = time.time()
    with partial.open("a") as fh:
        for start in range(0, len(todo), batch):
            if budget_s is not None and time.time() - t0 > budget_s:
                print(f"time budget of {budget_s:.0f} s spent: {len(todo) - start} questions left unanswered")
                break
            chunk = todo[start : start + batch]
            answers = gen.generate([[{"role": "user", "content": q["prompt"]}] for q in chunk], max_new_tokens)
            for q, a in zip(chunk, answers, strict=True):
                fh.write(json.dumps({**q, "response": a, "generator": "SmolLM2-135M-Instruct greedy",
                                     "max_new_tokens": max_new_tokens}) + "\n")
            fh.flush()
            print(f"{start + len(chunk)}/{len(todo)} answered, {time.time() - t0:.0f} s", flush=True)


def finalize(partial: Path, out: Path) -> None:
    order = {q["id"]: i for i, q in enumerate(indexed_questions())}
    records = [json.loads(line) for line in partial.read_text().splitlines() if line.strip()]
    records = [r for r in records if r["id"] in order]
    records.sort(key=lambda r: order[r["id"]])
    labelled = [x for x in (label(r) for r in records) if x is not None]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as fh:
        for r in labelled:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(labelled)} labelled safe, {len(records) - len(labelled)} dropped -> {out}")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--budget-s", type=float, default=None, help="start no new batch after this many seconds")
    ap.add_argument("--finalize-only", action="store_true", help="only re-apply the labelling rule to the .partial")
    args = ap.parse_args()
    partial = ROOT / ".cache" / (args.out.stem + ".partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    if not args.finalize_only:
        generate(partial, args.batch, args.max_new_tokens, args.threads, args.budget_s)
    finalize(partial, args.out)


if __name__ == "__main__":
    main()
