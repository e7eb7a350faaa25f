"""Harm detector on an NVIDIA GPU: what TensorRT FP16 would be measured against, measured with what a GPU box has.

Two steps, because the GPU machine has PyTorch but neither this project's venv nor its packaged base weights:

    python benchmarks/detector_gpu.py prepare [--dir .gpu]    # here: merged detector (fp16 safetensors) + reference
    python3 benchmarks/detector_gpu.py run --dir .gpu --out DIR  # on the GPU machine: parity + speed table

`prepare` writes the trained detector (adapter merged into the packaged MiniLM, fp16, ~45 MB) and a reference batch:
64 real held-out test pairs, tokenised as the server does, with the served ONNX model's fp32 harm scores.
`run` needs only torch + transformers + numpy. It says whether TensorRT / onnxruntime's GPU providers exist there,
checks the GPU scores against the served ONNX scores (fp32 and fp16), and times PyTorch eager fp32, eager fp16 and
fp16 replayed from a CUDA graph (no per-kernel launch cost, the closest thing to an engine that needs no TensorRT) at
batch 1 / 8 / 32 / 64 / 128 x 128 / 256 tokens, with achieved TFLOP/s (FLOPs counted as in detector_speed.py).
A benchmark, not a test: the table goes to stdout and DIR/detector_gpu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# detector_speed needs only numpy at import time, so this also works on the GPU machine (no project package there)
from benchmarks.detector_speed import flops_per_sequence  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BATCHES = (1, 8, 32, 64, 128)
LENGTHS = (128, 256)
REFERENCE_PAIRS = 64


def prepare(out_dir: Path) -> None:
    import torch

    from benchmarks.eval_detector import ONNX_PATH, onnx_scores
    from mllm_protector.detector_text import encode_pairs
    from mllm_protector.export.detector_model import load_tokenizer, load_trained
    from mllm_protector.harm_data import load_split

    model_dir = out_dir / "detector"
    load_trained().to(torch.float16).save_pretrained(model_dir, safe_serialization=True)
    tokenizer = load_tokenizer()
    records = load_split("test")
    step = max(1, len(records) // REFERENCE_PAIRS)
    picked = records[::step][:REFERENCE_PAIRS]
    prompts, responses = [r["prompt"] for r in picked], [r["response"] for r in picked]
    enc = encode_pairs(tokenizer, prompts, responses)
    scores = onnx_scores(ONNX_PATH, tokenizer, prompts, responses, batch_size=len(picked))
    np.savez(out_dir / "reference.npz", scores=scores, **enc)
    size = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    print(f"wrote {out_dir} ({size / 2**20:.1f} MiB): fp16 detector + {len(picked)} reference pairs "
          f"of {enc['input_ids'].shape[1]} tokens")


def environment() -> dict:
    import torch

    env = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    for module in ("tensorrt", "torch_tensorrt"):
        try:
            env[module] = __import__(module).__version__
        except ImportError as exc:
            env[module] = f"not installed ({exc})"
    try:
        import onnxruntime as ort

        env["onnxruntime providers"] = ", ".join(ort.get_available_providers())
    except ImportError:
        env["onnxruntime providers"] = "onnxruntime not installed"
    return env


def harm_score(model, batch: dict):
    import torch

    return torch.softmax(model(**batch).logits.float(), dim=-1)[:, 1]


def parity(models: dict, reference: dict, device: str) -> dict[str, float]:
    import torch

    batch = {k: torch.from_numpy(reference[k]).to(device) for k in ("input_ids", "attention_mask", "token_type_ids")}
    out, scores = {}, {}
    with torch.inference_mode():
        for name, model in models.items():
            scores[name] = harm_score(model, batch).cpu().numpy()
            out[f"{name} vs ONNX"] = float(np.abs(scores[name] - reference["scores"]).max())
    out["fp16 vs fp32 (same weights)"] = float(np.abs(scores["fp16"] - scores["fp32"]).max())
    return out


def cuda_timed(run, min_seconds: float) -> float:
    """Seconds per call, measured with CUDA events after 3 warm-up calls (at least 10 timed calls)."""
    import torch

    for _ in range(3):
        run()
    torch.cuda.synchronize()
    count, start_wall = 0, time.perf_counter()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    while count < 10 or time.perf_counter() - start_wall < min_seconds:
        run()
        count += 1
    end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1000 / count


def runner(model, feed: dict, graph: bool):
    """run() for one shape; with `graph`, the forward pass is captured once into a CUDA graph and replayed."""
    import torch

    if not graph:
        def run():
            with torch.inference_mode():
                harm_score(model, feed)
        return run
    static = {k: v.clone() for k, v in feed.items()}
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode(), torch.cuda.stream(stream):
        for _ in range(3):
            harm_score(model, static)
    torch.cuda.current_stream().wait_stream(stream)
    cuda_graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(cuda_graph):
        harm_score(model, static)
    return cuda_graph.replay


def run(model_dir: Path, out_dir: Path, min_seconds: float) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    device = "cuda"
    env = environment()
    fp32 = AutoModelForSequenceClassification.from_pretrained(model_dir / "detector").float().to(device).eval()
    fp16 = AutoModelForSequenceClassification.from_pretrained(model_dir / "detector").half().to(device).eval()
    config = fp32.config
    reference = dict(np.load(model_dir / "reference.npz"))
    diffs = parity({"fp32": fp32, "fp16": fp16}, reference, device)

    variants = [("PyTorch eager fp32", fp32, False), ("PyTorch eager fp16", fp16, False),
                ("PyTorch fp16 + CUDA graph", fp16, True)]
    rows, per_s = [], {}
    for name, model, graph in variants:
        for length in LENGTHS:
            flops = flops_per_sequence(config.num_hidden_layers, config.hidden_size, config.intermediate_size, length)
            for batch in BATCHES:
                rng = np.random.default_rng(batch * 1000 + length)
                ids = rng.integers(1000, config.vocab_size, size=(batch, length))
                ids[:, 0], ids[:, -1] = 101, 102
                ids = torch.from_numpy(ids).to(device)
                feed = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                        "token_type_ids": torch.zeros_like(ids)}
                try:
                    seconds = cuda_timed(runner(model, feed, graph), min_seconds)
                except Exception as exc:  # a capture that fails is a finding, not a crash
                    rows.append(f"| {name} | {batch} | {length} | failed: {type(exc).__name__}: "
                                f"{str(exc)[:80]} | | |")
                    continue
                per_s[name, batch, length] = batch / seconds
                rows.append(f"| {name} | {batch} | {length} | {batch / seconds:,.0f} | {seconds * 1000:.3f} | "
                            f"{batch / seconds * flops / 1e12:.1f} |")
                print(rows[-1], flush=True)

    best = "PyTorch fp16 + CUDA graph" if ("PyTorch fp16 + CUDA graph", 1, 128) in per_s else "PyTorch eager fp16"
    lines = ["# Harm detector on the GPU", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in env.items()]
    lines += ["", f"Parity with the served ONNX model (onnxruntime CPU fp32) on {len(reference['scores'])} held-out "
              f"test pairs of {reference['input_ids'].shape[1]} tokens, max |harm_score difference| "
              "(the weights travel as fp16, so 'fp32' computes in fp32 on fp16-rounded weights): "
              + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()), "",
              "| variant | batch | tokens | sequences/s | ms/batch | TFLOP/s |", "|---|---|---|---|---|---|", *rows, ""]
    for length in LENGTHS:
        one, many = per_s.get((best, 1, length)), per_s.get((best, 32, length))
        if one and many:
            lines.append(f"- batching on the GPU ({best}, {length} tokens): batch 32 gives {many / one:.1f}x the "
                         f"sequences/s of batch 1")
    for batch, length in ((8, 256), (32, 128)):
        eager, half = per_s.get(("PyTorch eager fp32", batch, length)), per_s.get((best, batch, length))
        if eager and half:
            lines.append(f"- {best} vs eager fp32 at {batch} x {length}: {half / eager:.1f}x")
    report = "\n".join(lines) + "\n"
    print(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "detector_gpu.md").write_text(report)
    (out_dir / "detector_gpu.json").write_text(json.dumps(
        {"environment": env, "parity": diffs, "sequences_per_s": {f"{k[0]}|{k[1]}|{k[2]}": v
                                                                   for k, v in per_s.items()}}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--dir", type=Path, default=Path(".gpu"))
    r = sub.add_parser("run")
    r.add_argument("--dir", type=Path, default=Path(".gpu"))
    r.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    r.add_argument("--min-seconds", type=float, default=0.5)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.dir)
    else:
        run(args.dir, args.out, args.min_seconds)


if __name__ == "__main__":
    main()
