"""Detoxifier speed on this CPU: the merged fine-tune in PyTorch eager vs its ONNX export on onnxruntime (served).

    python benchmarks/detox_speed.py [--items 8] [--max-new-tokens 128]

Both run the same `Detoxifier` code path (greedy `generate`, KV cache) on the same held-out flagged answers of
`eval_detox` (test-split prompt groups), interleaved item by item so that machine noise hits both alike. Reported:
batch-1 latency per rewrite (p50, mean), prefill and per-token decode time (from forced 1- and 33-token generations
of a 400-token prompt), one batch-8 call against the same 8 rows one by one, and whether both runtimes produced
identical text. A benchmark, not a test: run it on a quiet machine; writes `benchmarks/results/detox_speed.md`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.eval_detox import (  # noqa: E402  (sets the offline environment)
    RESULTS,
    Detector,
    flagged_items,
    served_detoxifier,
    served_threshold,
)
from mllm_protector.detox import Detoxifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TORCH_DIR = ROOT / "artifacts" / "detoxifier"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def prefill_and_decode(detoxifier: Detoxifier, prompt_tokens: int = 400, new_tokens: int = 33) -> tuple[float, float]:
    """(prefill s, decode s per token): generation forced to 1 and to `new_tokens` tokens from random ids."""
    import torch

    generator = detoxifier.generator
    ids = torch.randint(1000, 40000, (1, prompt_tokens))
    mask = torch.ones_like(ids)

    def run(n: int) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            generator.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                     do_sample=False, pad_token_id=generator.tokenizer.pad_token_id)
        return time.perf_counter() - start

    run(2)
    prefill = min(run(1) for _ in range(2))
    return prefill, (run(new_tokens) - prefill) / (new_tokens - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=8, help="flagged held-out answers timed at batch 1")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()

    served, _ = served_detoxifier()
    items, _ = flagged_items(Detector(), served_threshold(), max(args.items, 8))
    runtimes = {"PyTorch eager": Detoxifier(TORCH_DIR, args.max_new_tokens),
                "onnxruntime (served)": Detoxifier(served, args.max_new_tokens)}
    for d in runtimes.values():  # warm-up
        d.rewrite(["warm up"], ["warm up"])

    latency: dict[str, list[float]] = {name: [] for name in runtimes}
    texts: dict[str, list[str]] = {name: [] for name in runtimes}
    for r in items[: args.items]:
        for name, d in runtimes.items():
            seconds, out = timed(lambda d=d, r=r: d.rewrite([r["prompt"]], [r["response"]]))
            latency[name].append(seconds)
            texts[name].append(out[0])
        print(f"{len(texts[name])}/{args.items}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in latency.items()),
              flush=True)

    rows, batch8 = [], items[:8]
    for name, d in runtimes.items():
        prefill, per_token = prefill_and_decode(d)
        batched, _ = timed(lambda d=d: d.rewrite([r["prompt"] for r in batch8], [r["response"] for r in batch8]))
        one_by_one = sum(timed(lambda d=d, r=r: d.rewrite([r["prompt"]], [r["response"]]))[0] for r in batch8)
        rows.append(f"| {name} | {statistics.median(latency[name]):.2f} | {statistics.mean(latency[name]):.2f} | "
                    f"{1000 * prefill:.0f} | {1000 * per_token:.0f} | {batched:.1f} | {one_by_one:.1f} |")
        print(rows[-1], flush=True)
    names = list(runtimes)
    same = sum(a == b for a, b in zip(texts[names[0]], texts[names[1]], strict=True))
    ratio = statistics.median(latency[names[0]]) / statistics.median(latency[names[1]])
    table = "\n".join([
        f"Detoxifier on this CPU, {args.items} held-out flagged answers at batch 1, max_new_tokens "
        f"{args.max_new_tokens}, interleaved; prefill / decode from a 400-token random prompt.",
        "",
        "| runtime | p50 s / rewrite | mean s | prefill 400 tokens (ms) | decode (ms / token) | batch of 8 (s) | "
        "the 8 one by one (s) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- p50 {names[0]} / {names[1]}: **{ratio:.2f}x**; identical rewrites: {same} of {len(items[: args.items])}",
        "",
        "`python benchmarks/detox_speed.py`",
    ])
    print()
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "detox_speed.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
