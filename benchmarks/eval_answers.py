"""The served harm detector on your own labelled answers, through a running server: how well does the deployed guard
tell harmful answers from safe ones on data this project never saw?

    python benchmarks/eval_answers.py answers.jsonl [--url localhost:8001 --protocol grpc] [--out scores.jsonl]

`answers.jsonl`: one object per line with `response` (the answer), `label` (1 / true / "harmful" / "unsafe", or
0 / false / "safe" / "benign" / "harmless") and optionally `prompt` (the request; empty when absent), `category`
(any name: adds a per-category table) and `group` (answers to one request share it; default: the prompt).

Each answer is scored by the server's `harm_detector` model, exactly as the guard scores it, and compared with the
threshold of the server's `protector` config (`harm_threshold`; `--threshold` for another operating point). It
prints AUROC, PR-AUC, F1, TPR at FPR 1 % / 5 %, FPR and TPR at the threshold, 95 % intervals from 1,000 resamples of
whole groups, and per-category rates. An answer the detector refuses (too long: more than 8 windows) is withheld by
the guard, so it counts as flagged (score 1.0); the table says how many there were. Exit status: 0 done, 2 a bad
file or arguments, 3 the server could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: the repository root on the path, like the other benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.eval_detector import group_bootstrap, interval_table, table  # noqa: E402
from mllm_protector.client import AsyncProtectorClient, ProtectorConnectionError, ProtectorError  # noqa: E402
from mllm_protector.export.detector_train import metrics  # noqa: E402

HARMFUL_LABELS = {"1", "true", "harmful", "unsafe"}
SAFE_LABELS = {"0", "false", "safe", "benign", "harmless"}
TOO_LONG = "too long for the harm detector"


class DataError(ValueError):
    """A line of the answers file that cannot be used; the message names the line."""


def parse_label(value: object) -> int:
    text = str(value).strip().lower()
    if text in HARMFUL_LABELS:
        return 1
    if text in SAFE_LABELS:
        return 0
    raise ValueError(f"label {value!r} is not one of {sorted(HARMFUL_LABELS | SAFE_LABELS)}")


def load_answers(path: Path) -> list[dict]:
    """The records of `path`, each with prompt, response, label (0/1), category and group; raises DataError."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            response, prompt = raw.get("response"), raw.get("prompt") or ""
            if not isinstance(response, str) or not response.strip():
                raise ValueError("'response' must be a non-empty string")
            if not isinstance(prompt, str):
                raise ValueError("'prompt' must be a string")
            label = parse_label(raw.get("label"))
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            raise DataError(f"{path}:{number}: {e}") from None
        records.append({"prompt": prompt, "response": response, "label": label,
                        "category": str(raw.get("category") or ""), "group": str(raw.get("group") or prompt)})
    if not records:
        raise DataError(f"{path}: no answers")
    return records


async def score_all(url: str, protocol: str, records: list[dict], concurrency: int) -> tuple[np.ndarray, int]:
    """(scores, how many the detector refused as too long: scored 1.0, as the guard withholds them)."""
    limit = asyncio.Semaphore(concurrency)
    refused = 0

    async def one(client: AsyncProtectorClient, r: dict) -> float:
        nonlocal refused
        async with limit:
            try:
                return await client.score(r["prompt"], r["response"])
            except ProtectorError as e:
                if TOO_LONG not in str(e) or isinstance(e, ProtectorConnectionError):
                    raise
                refused += 1
                return 1.0

    async with AsyncProtectorClient(url, protocol=protocol, timeout=300) as client:
        scores = await asyncio.gather(*(one(client, r) for r in records))
    return np.array(scores, dtype=np.float64), refused


def server_threshold(url: str, protocol: str) -> float:
    """The `harm_threshold` of the server's protector config: the cut the guard applies."""
    if protocol == "grpc":
        import tritonclient.grpc as triton

        config = triton.InferenceServerClient(url).get_model_config("protector", as_json=True)["config"]
    else:
        import tritonclient.http as triton

        config = triton.InferenceServerClient(url).get_model_config("protector")
    return float(config["parameters"]["harm_threshold"]["string_value"])


def category_rates(records: list[dict], s: np.ndarray, threshold: float) -> str:
    lines = ["| category | harmful n | TPR@thr | safe n | FPR@thr |", "|---|---|---|---|---|"]
    labels, categories = np.array([r["label"] for r in records]), np.array([r["category"] for r in records])
    for category in sorted(set(categories)):
        y, flagged = labels[categories == category], s[categories == category] >= threshold
        tpr = f"{flagged[y == 1].mean():.3f}" if (y == 1).any() else "-"
        fpr = f"{flagged[y == 0].mean():.3f}" if (y == 0).any() else "-"
        lines.append(f"| {category or '(none)'} | {int((y == 1).sum())} | {tpr} | {int((y == 0).sum())} | {fpr} |")
    return "\n".join(lines)


def report(path: Path, records: list[dict], s: np.ndarray, threshold: float, refused: int) -> str:
    y = np.array([r["label"] for r in records])
    m = metrics(y, s, threshold)
    name = f"served harm_detector at {threshold:g}"
    out = [f"# Harm detector on {path.name}", "",
           f"{len(records)} answers, {int(y.sum())} harmful, {len({r['group'] for r in records})} groups; "
           f"{refused} refused by the detector as too long (counted as flagged: the guard withholds them).", "",
           table([(name, m)])]
    if 0 < y.sum() < len(y):
        ci = group_bootstrap(y, s, [r["group"] for r in records], threshold)
        out += ["", "95 % intervals (1,000 resamples of whole groups):", "", interval_table([(name, m, ci)])]
    if any(r["category"] for r in records):
        out += ["", category_rates(records, s, threshold)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("answers", type=Path, help="JSONL of labelled answers (see the module docstring)")
    parser.add_argument("--url", default="localhost:8001", help="the server (default: localhost:8001)")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--threshold", type=float, help="another operating point (default: the server's)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default: 8)")
    parser.add_argument("--out", type=Path, help="also write each record with its score here (JSONL)")
    args = parser.parse_args(argv)
    try:
        records = load_answers(args.answers)
    except (OSError, DataError) as e:
        print(f"eval_answers: {e}", file=sys.stderr)
        return 2
    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        print(f"eval_answers: --threshold must be in (0, 1], got {args.threshold}", file=sys.stderr)
        return 2
    try:
        threshold = server_threshold(args.url, args.protocol) if args.threshold is None else args.threshold
        scores, refused = asyncio.run(score_all(args.url, args.protocol, records, args.concurrency))
    except ProtectorConnectionError as e:
        print(f"eval_answers: {e}", file=sys.stderr)
        return 3
    except Exception as e:  # noqa: BLE001 - tritonclient raises its own types for an unreachable server
        if "connect" in str(e).lower() or "unavailable" in str(e).lower():
            print(f"eval_answers: cannot reach {args.url}: {e}", file=sys.stderr)
            return 3
        raise
    if args.out:
        with args.out.open("w", encoding="utf-8") as f:
            for r, s in zip(records, scores, strict=True):
                f.write(json.dumps({**r, "harm_score": float(s), "flagged": bool(s >= threshold)}) + "\n")
    print(report(args.answers, records, scores, threshold, refused))
    return 0


if __name__ == "__main__":
    sys.exit(main())
