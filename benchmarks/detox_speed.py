"""Detoxifier speed on this CPU: the merged fine-tune in PyTorch eager vs its onnxruntime-genai build with 8-bit
weights (served by the CPU config).

    python benchmarks/detox_speed.py [--items 8] [--max-new-tokens 128]

Both run the same `Detoxifier` generation (greedy, KV cache, the served prompt with the detector's hazard category) on
the same held-out flagged answers of `eval_detox` (test-split prompt groups), interleaved item by item so that
machine noise hits both alike. Reported: batch-1 latency per rewrite (p50, mean), new tokens per rewrite, prefill and
per-token decode time (from forced 1- and 33-token generations of a 400-token prompt), how many rewrites are
identical, and what a rewrite would cost if the model wrote all `--max-new-tokens` (prefill + decode). A benchmark,
not a test: run it on a quiet machine; writes `benchmarks/results/detox_speed.md`.
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
from mllm_protector.guard import top_category  # noqa: E402
from mllm_protector.textgen import GenaiDecoder  # noqa: E402

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
        if isinstance(generator.model, GenaiDecoder):
            import onnxruntime_genai as og

            params = og.GeneratorParams(generator.model.model)
            params.set_search_options(do_sample=False, max_length=prompt_tokens + n, min_length=prompt_tokens + n)
            g = og.Generator(generator.model.model, params)
            g.append_tokens(ids.tolist())
            while not g.is_done():
                g.generate_next_token()
        else:
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

    served = served_detoxifier()
    detector = Detector()
    items, _ = flagged_items(detector, served_threshold(), args.items)
    categories = [top_category(c) for c in detector.with_categories([r["prompt"] for r in items],
                                                                      [r["response"] for r in items]).categories]
    runtimes = {"PyTorch eager (merged fp32)": Detoxifier(TORCH_DIR, args.max_new_tokens),
                "onnxruntime-genai 8-bit (served)": Detoxifier(served, args.max_new_tokens)}
    for d in runtimes.values():  # warm-up
        d.rewrite(["warm up"], ["warm up"])

    latency: dict[str, list[float]] = {name: [] for name in runtimes}
    texts: dict[str, list[str]] = {name: [] for name in runtimes}
    for r, category in zip(items, categories, strict=True):
        for name, d in runtimes.items():
            # the generation alone (the rewrite is it plus a fixed text): its tokens are the decode work
            seconds, out = timed(lambda d=d, r=r, c=category: d.declines([r["prompt"]], [r["response"]], [False], [c]))
            latency[name].append(seconds)
            texts[name].append(out[0])
        print(f"{len(texts[name])}/{len(items)}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in latency.items()),
              flush=True)

    rows = []
    for name, d in runtimes.items():
        prefill, per_token = prefill_and_decode(d)
        tokens = statistics.median(len(d.generator.tokenizer(t)["input_ids"]) for t in texts[name])
        forced = prefill + (args.max_new_tokens - 1) * per_token
        rows.append(f"| {name} | {statistics.median(latency[name]):.2f} | {statistics.mean(latency[name]):.2f} | "
                    f"{tokens:.0f} | {1000 * prefill:.0f} | {1000 * per_token:.1f} | {forced:.2f} |")
        print(rows[-1], flush=True)
    names = list(runtimes)
    same = sum(a == b for a, b in zip(texts[names[0]], texts[names[1]], strict=True))
    ratio = statistics.median(latency[names[0]]) / statistics.median(latency[names[1]])
    table = "\n".join([
        f"Detoxifier on this CPU, {len(items)} held-out flagged answers at batch 1, max_new_tokens "
        f"{args.max_new_tokens}, interleaved; prefill / decode from a 400-token random prompt.",
        "",
        "| runtime | p50 s / rewrite | mean s | new tokens (median) | prefill 400 tokens (ms) | decode (ms / token) "
        f"| {args.max_new_tokens} tokens forced (s) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- p50 {names[0]} / {names[1]}: **{ratio:.2f}x**; identical rewrites: {same} of {len(items)}",
        "",
        "`python benchmarks/detox_speed.py`",
    ])
    print()
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "detox_speed.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
