"""Harm detector speed on this CPU: PyTorch eager vs onnxruntime fp32 vs onnxruntime int8, with a roofline estimate.

    python benchmarks/detector_speed.py [--threads 0] [--min-seconds 2]

For every backend, batch size (1 / 8 / 32) and sequence length (128 / 256 tokens): sequences per second, latency per
batch, and achieved GFLOP/s, where FLOPs per sequence are counted from the architecture (2 x multiply-adds of the
encoder's matrix products, attention included; embeddings and softmax left out). The roof is this machine's measured
fp32 GEMM rate (a large matmul in torch and in onnxruntime, the faster one, same threads): `% roof` says how close each
backend gets to the hardware.

Same inputs for every backend (random vocabulary ids, full attention mask). The ONNX rows run through
`OnnxClassifier`, as the CPU `harm_classifier` does: the fp32 file (`model_repository/harm_classifier/1/model.onnx`,
what the GPU configs serve) one session run per batch, the int8 file the CPU config serves (`model.int8.onnx`, dynamic
quantisation) one run per pair, so that a score never depends on its batch. A benchmark, not a test: run it on a quiet
machine; the table and the headline ratio are written to `benchmarks/results/detector_speed.md`. int8 can pass the
fp32 roof: its matrix products are int8.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BATCHES = (1, 8, 32)
LENGTHS = (128, 256)


def flops_per_sequence(layers: int, hidden: int, intermediate: int, length: int) -> float:
    """2 x multiply-adds of one encoder pass: Q, K, V, O projections, the two FFN matrices, QK^T and attention x V."""
    projections = 4 * length * hidden * hidden
    ffn = 2 * length * hidden * intermediate
    attention = 2 * length * length * hidden
    return 2.0 * layers * (projections + ffn + attention)


def gemm_roof(threads: int, size: int = 2048, seconds: float = 1.0, windows: int = 3) -> float:
    """The fp32 rate of a square matmul: the best of `windows` one-second measurements, of torch (MKL / oneDNN) and
    of onnxruntime (MLAS), whichever is faster on this CPU (MKL does not use AVX-512 on every vendor's CPU)."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    a, b = torch.randn(size, size), torch.randn(size, size)
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(helper.make_model(graph).SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    feeds = {"a": a.numpy(), "b": b.numpy()}
    best = 0.0
    for run in (lambda: torch.matmul(a, b), lambda: session.run(None, feeds)):
        run()
        for _ in range(windows):
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                run()
                count += 1
            best = max(best, 2 * size**3 * count / (time.perf_counter() - start) / 1e9)
    return best


def timed(run, min_seconds: float) -> float:
    """Seconds per call: one warm-up call, then calls until `min_seconds` have passed (at least 3)."""
    run()
    count, start = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - start < min_seconds:
        run()
        count += 1
    return (time.perf_counter() - start) / count


def feeds(batch: int, length: int, vocab: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch * 1000 + length)
    ids = rng.integers(1000, vocab, size=(batch, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def backends(threads: int):
    """(name, build) pairs; build() returns run(feed) -> None."""
    import torch

    def torch_eager():
        from mllm_protector.export.detector_model import load_trained

        model = load_trained()

        def run(feed):
            with torch.inference_mode():
                model(**{k: torch.from_numpy(v) for k, v in feed.items()})

        return run

    def onnx(path: Path):
        def build():
            from mllm_protector.onnx_classifier import OnnxClassifier

            # as harm_classifier runs it: int8 scores each pair alone (onnx_classifier), fp32 the whole batch
            classifier = OnnxClassifier(path, intra_op_threads=threads)
            return lambda feed: classifier.run(feed)

        return build

    from benchmarks.eval_detector import ONNX_PATH, served_onnx_path

    out = [("PyTorch eager fp32", torch_eager), ("onnxruntime fp32 (GPU configs' file)", onnx(ONNX_PATH))]
    if served_onnx_path() != ONNX_PATH:
        out.append(("onnxruntime int8 (served on CPU)", onnx(served_onnx_path())))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="0 = every core (torch and onnxruntime)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="timing per cell")
    args = parser.parse_args()

    import torch
    from transformers import AutoConfig

    from mllm_protector.export.detector_model import base_model_dir

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    config = AutoConfig.from_pretrained(base_model_dir())
    roof = gemm_roof(threads)
    print(f"fp32 GEMM roof: {roof:.1f} GFLOP/s on {threads} thread(s)", flush=True)

    rows, rate = [], {}
    for name, build in backends(args.threads):
        run = build()
        for length in LENGTHS:
            flops = flops_per_sequence(config.num_hidden_layers, config.hidden_size, config.intermediate_size, length)
            for batch in BATCHES:
                feed = feeds(batch, length, config.vocab_size)
                seconds = timed(lambda feed=feed, run=run: run(feed), args.min_seconds)
                per_s = batch / seconds
                gflops = per_s * flops / 1e9
                rate[(name, batch, length)] = per_s
                rows.append(f"| {name} | {batch} | {length} | {per_s:.1f} | {1000 * seconds:.1f} | {gflops:.1f} | "
                            f"{100 * gflops / roof:.0f} % |")
                print(rows[-1], flush=True)

    eager = rate[("PyTorch eager fp32", 8, 256)]
    names = dict.fromkeys(name for name, _, _ in rate)
    ratios = [f"- {name} / PyTorch eager at batch 8 x 256 tokens: **{rate[(name, 8, 256)] / eager:.2f}x**"
              for name in names if name != "PyTorch eager fp32"]
    table = "\n".join([
        f"fp32 GEMM roof (2048^2 matmul, the faster of torch and onnxruntime): {roof:.1f} GFLOP/s, "
        f"{threads} thread(s); "
        f"FLOPs per sequence: {flops_per_sequence(6, 384, 1536, 128) / 1e9:.2f} G at 128 tokens, "
        f"{flops_per_sequence(6, 384, 1536, 256) / 1e9:.2f} G at 256 (MiniLM-L6, H 384).",
        "",
        "| backend | batch | tokens | seq/s | ms / batch | GFLOP/s | % roof |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *ratios,
        "",
        "`python benchmarks/detector_speed.py`",
    ])
    print()
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "detector_speed.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
