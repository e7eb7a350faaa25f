"""Detector candidate (c) of issue 3: a decoder backbone (SmolLM2-135M-Instruct) with a classification head, as in
the paper, fine-tuned on the GPU machine and compared with the served MiniLM pair classifier on the same splits.

    python benchmarks/candidate_decoder.py prepare [--dir .gpu_c]   # here: tokenised splits + packed base weights
    python3 benchmarks/candidate_decoder.py run --weights DIR [DIR ...] --dir .gpu_c --out OUT   # on the GPU

Why two steps: the GPU machine has torch + transformers but not this project's packages, and it receives at most
64 MiB per call. `prepare` tokenises the detector's training mix (`detector_train.training_mix` + prompt dropout),
validation and test splits with SmolLM2's tokenizer ("User: prompt / Assistant: response", prompt clipped to 64
tokens, 256 in all, as `encode_pairs` does for MiniLM), and packs the packaged base weights losslessly in their GGUF
grids (the linear layers are Q4_1: 16 levels per block of 32; the embedding is Q8_0) into two files of ~50 MB, sent
in two calls. `run` rebuilds the weights, fine-tunes backbone + head (full fine-tune, bf16 autocast, the detector's
class weighting, best epoch on validation AUROC), calibrates the threshold on validation for a 2% benign
false-positive rate exactly as `detector_train` does, and reports test metrics, the human-labelled slice and GPU
timing at 8 x 256. Results: OUT/candidate_decoder.md and .json. The test split is reported, never used to choose.
"""

from __future__ import annotations

import argparse
import json
import math
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
BASE_DIR = ROOT / "artifacts" / "smollm2-135m-instruct"
MAX_LENGTH, MAX_PROMPT_TOKENS = 256, 64
TARGET_FPR = 0.02
SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------------------------------- prepare


def _encode(tokenizer, records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(records), MAX_LENGTH), tokenizer.pad_token_id, dtype=np.int32)
    lengths = np.zeros(len(records), dtype=np.int32)

    def tokens(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    user, newline, assistant = tokens("User: "), tokens("\n"), tokens("Assistant: ")
    for i, r in enumerate(records):
        prompt = tokens(r["prompt"].strip())[:MAX_PROMPT_TOKENS]
        head = (user + prompt + newline if prompt else []) + assistant
        body = tokens(r["response"].strip())
        row = (head + body)[:MAX_LENGTH]
        ids[i, : len(row)], lengths[i] = row, len(row)
    return ids, lengths


def _pack(name: str, w: np.ndarray) -> dict[str, np.ndarray]:
    """The tensor in its GGUF grid: Q4_1 (scale, min, two 4-bit codes per byte per block of 32), Q8_0 for the
    embedding (scale, int8 code), raw float32 for 1-D tensors. `run` checks nothing is lost beyond fp16 rounding."""
    if w.ndim == 1:
        return {f"{name}|raw": w.astype(np.float32)}
    blocks = w.reshape(-1, 32).astype(np.float64)
    if name.endswith("embed_tokens.weight"):
        d = np.abs(blocks).max(1, keepdims=True) / 127
        q = np.round(blocks / np.where(d == 0, 1, d)).astype(np.int8)
        return {f"{name}|q8": q, f"{name}|d": d.astype(np.float32), f"{name}|shape": np.array(w.shape)}
    low, high = blocks.min(1, keepdims=True), blocks.max(1, keepdims=True)
    d = (high - low) / 15
    q = np.clip(np.round((blocks - low) / np.where(d == 0, 1, d)), 0, 15).astype(np.uint8)
    return {f"{name}|q4": q[:, 0::2] | (q[:, 1::2] << 4), f"{name}|d": d.astype(np.float16),
            f"{name}|m": low.astype(np.float16), f"{name}|shape": np.array(w.shape)}


def prepare(out_dir: Path) -> None:
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    from mllm_protector.export.detector_train import calibration_mask, drop_prompts, training_mix
    from mllm_protector.harm_data import human_labelled, load_split

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(BASE_DIR)
    data = {}
    for split in SPLITS:
        records = load_split(split)
        if split == "train":
            records = drop_prompts(training_mix(records))
        ids, lengths = _encode(tokenizer, records)
        human = [human_labelled(r) for r in records]
        calibration = calibration_mask(records)
        data |= {f"{split}_ids": ids, f"{split}_lengths": lengths,
                 f"{split}_labels": np.array([r["label"] for r in records], dtype=np.int8),
                 f"{split}_human": np.array(human), f"{split}_calibration": np.array(calibration)}
    np.savez_compressed(out_dir / "data.npz", **data)
    config = json.loads((BASE_DIR / "config.json").read_text())
    (out_dir / "config.json").write_text(json.dumps(config))

    state = load_file(str(BASE_DIR / "model.safetensors"))
    packed = [_pack(k, v) for k, v in state.items()]
    total = sum(a.nbytes for p in packed for a in p.values())
    halves, size = ({}, {}), 0
    for p in packed:
        halves[0 if size < total / 2 else 1].update(p)
        size += sum(a.nbytes for a in p.values())
    weights_dir = out_dir.parent / f"{out_dir.name}_weights"
    for i, half in enumerate(halves):
        (weights_dir / str(i)).mkdir(parents=True, exist_ok=True)
        np.savez(weights_dir / str(i) / "weights.npz", **half)
    counts = {s: f"{len(data[f'{s}_labels'])} ({int(data[f'{s}_labels'].sum())} harmful)" for s in SPLITS}
    print(f"data {counts}; weights {total / 2**20:.1f} MiB in {weights_dir}/0 and /1")


# ----------------------------------------------------------------------------------------------------------- run


def unpack(files: list[Path]) -> dict:
    import torch

    arrays: dict[str, np.ndarray] = {}
    for f in files:
        arrays.update(dict(np.load(f)))
    state = {}
    for key in {k.split("|")[0] for k in arrays if not k.startswith("lm_head")}:
        if f"{key}|raw" in arrays:
            w = arrays[f"{key}|raw"]
        elif f"{key}|q8" in arrays:
            w = (arrays[f"{key}|q8"].astype(np.float32) * arrays[f"{key}|d"]).reshape(arrays[f"{key}|shape"])
        else:
            packed = arrays[f"{key}|q4"]
            q = np.empty((packed.shape[0], 32), dtype=np.float32)
            q[:, 0::2], q[:, 1::2] = packed & 15, packed >> 4
            d, m = arrays[f"{key}|d"].astype(np.float32), arrays[f"{key}|m"].astype(np.float32)
            w = (q * d + m).reshape(arrays[f"{key}|shape"])
        state[key.removeprefix("model.")] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
    return state


def threshold_for_fpr(safe_scores: np.ndarray, fpr_max: float) -> float:
    """As `detector_train.threshold_for_fpr` (copied: this script runs where the package is not installed)."""
    s = np.sort(np.asarray(safe_scores, dtype=np.float32))[::-1]
    allowed = int(math.floor(fpr_max * len(s)))
    return 0.0 if allowed >= len(s) else float(np.nextafter(s[allowed], np.float32(np.inf)))


def metrics(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    """As `detector_train.metrics`."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    pred = s >= threshold
    return {"n": int(len(y)), "auroc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s)),
            "f1": float(f1_score(y, pred, zero_division=0)),
            "tpr_at_fpr1": float(tpr[fpr <= 0.01 + 1e-12].max()), "tpr_at_fpr5": float(tpr[fpr <= 0.05 + 1e-12].max()),
            "fpr_at_threshold": float(pred[y == 0].mean()), "tpr_at_threshold": float(pred[y == 1].mean())}


class DecoderClassifier:
    """LlamaModel + a linear head on the hidden state of the last real token."""

    def __init__(self, config_path: Path, state: dict, device: str) -> None:
        import torch
        from transformers import LlamaConfig, LlamaModel

        config = LlamaConfig(**{k: v for k, v in json.loads(config_path.read_text()).items()
                                if not k.startswith("_") and k not in ("architectures", "transformers_version")})
        torch.manual_seed(20240611)
        self.backbone = LlamaModel(config)
        missing, unexpected = self.backbone.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise RuntimeError(f"weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.backbone.to(device)
        self.head = torch.nn.Linear(config.hidden_size, 2).to(device)
        self.device = device

    def parameters(self):
        return [*self.backbone.parameters(), *self.head.parameters()]

    def train(self, mode: bool = True) -> None:
        self.backbone.train(mode)
        self.head.train(mode)

    def logits(self, ids, lengths):
        import torch

        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]).long()
        hidden = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        last = hidden[torch.arange(ids.shape[0], device=ids.device), lengths - 1]
        return self.head(last.float())


def scores(model: DecoderClassifier, ids: np.ndarray, lengths: np.ndarray, batch: int = 128) -> np.ndarray:
    import torch

    model.train(False)
    out = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        for i in range(0, len(ids), batch):
            n = int(lengths[i : i + batch].max())
            x = torch.from_numpy(ids[i : i + batch, :n]).long().to(model.device)
            n_ = torch.from_numpy(lengths[i : i + batch]).long().to(model.device)
            out.append(torch.softmax(model.logits(x, n_), -1)[:, 1].float().cpu().numpy())
    return np.concatenate(out)


def fine_tune(state: dict, config_path: Path, data: dict, lr: float, epochs: int, batch: int, log) -> dict:
    import torch

    model = DecoderClassifier(config_path, {k: v.clone() for k, v in state.items()}, "cuda")
    ids, lengths, labels = data["train_ids"], data["train_lengths"], data["train_labels"].astype(np.int64)
    n_pos = int(labels.sum())
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, min(2.0, (len(labels) - n_pos) / max(n_pos, 1))],
                                                            device="cuda"))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(ids) / batch)
    warm = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    rng = np.random.default_rng(20240611)
    best = {"val_auroc": -1.0}
    from sklearn.metrics import roc_auc_score

    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train(True)
        order = rng.permutation(len(ids))
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            n = int(lengths[idx].max())
            x = torch.from_numpy(ids[idx, :n]).long().cuda()
            n_ = torch.from_numpy(lengths[idx]).long().cuda()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = loss_fn(model.logits(x, n_), torch.from_numpy(labels[idx]).cuda())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        s_val = scores(model, data["val_ids"], data["val_lengths"])
        auroc = float(roc_auc_score(data["val_labels"], s_val))
        log(f"lr {lr} epoch {epoch}: val AUROC {auroc:.4f} ({time.perf_counter() - start:.0f} s)")
        if auroc > best["val_auroc"]:
            s_test = scores(model, data["test_ids"], data["test_lengths"])
            best = {"val_auroc": auroc, "epoch": epoch, "s_val": s_val, "s_test": s_test, "model": model}
    best["train_s"] = time.perf_counter() - start
    return best


def gpu_timing(model: DecoderClassifier, batch: int = 8, length: int = 256) -> float:
    import torch

    ids = torch.randint(1000, 40000, (batch, length), device="cuda")
    lengths = torch.full((batch,), length, device="cuda")
    model.train(False)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(3):
            model.logits(ids, lengths)
        torch.cuda.synchronize()
        t, n = time.perf_counter(), 0
        while n < 20 or time.perf_counter() - t < 1.0:
            model.logits(ids, lengths)
            n += 1
        torch.cuda.synchronize()
    return batch * n / (time.perf_counter() - t)


def run(weight_files: list[Path], data_dir: Path, out_dir: Path, lrs: list[float], epochs: int, batch: int) -> None:
    lines: list[str] = []

    def log(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    state = unpack(weight_files)
    data = dict(np.load(data_dir / "data.npz"))
    log(f"train {len(data['train_ids'])} / val {len(data['val_ids'])} / test {len(data['test_ids'])} pairs; "
        f"{sum(v.numel() for v in state.values()) / 1e6:.1f} M base parameters")
    results = []
    for lr in lrs:
        best = fine_tune(state, data_dir / "config.json", data, lr, epochs, batch, log)
        cal = data["val_calibration"]
        thr = threshold_for_fpr(best["s_val"][cal], TARGET_FPR)
        y_test = data["test_labels"].astype(int)
        human = data["test_human"]
        row = {"lr": lr, "epoch": best["epoch"], "val_auroc": best["val_auroc"], "threshold": thr,
               "val_tpr_at_threshold": float((best["s_val"][data["val_labels"] == 1] >= thr).mean()),
               "test": metrics(y_test, best["s_test"], thr),
               "test_human": metrics(y_test[human], best["s_test"][human], thr),
               "train_s": best["train_s"], "gpu_seq_per_s_8x256": gpu_timing(best["model"]),
               "s_test": best["s_test"]}
        log(json.dumps({k: v for k, v in row.items() if k not in ("test", "test_human", "s_test")}))
        results.append(row)
    chosen = max(results, key=lambda r: r["val_auroc"])  # chosen on validation, like the served detector
    cols = ("auroc", "pr_auc", "tpr_at_fpr1", "tpr_at_fpr5", "fpr_at_threshold", "tpr_at_threshold")
    table = ["| candidate (c) run | val AUROC | test AUROC | PR-AUC | TPR@FPR1% | TPR@FPR5% | FPR@thr | TPR@thr | "
             "human-labelled AUROC |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        mark = " (chosen on val)" if r is chosen else ""
        table.append(f"| SmolLM2-135M full fine-tune, lr {r['lr']}, best epoch {r['epoch']}{mark} | "
                     f"{r['val_auroc']:.4f} | " + " | ".join(f"{r['test'][c]:.3f}" for c in cols)
                     + f" | {r['test_human']['auroc']:.3f} |")
    report = "\n".join(["# Detector candidate (c): SmolLM2-135M + classification head", "", *table, "",
                        "Log:", "", *[f"    {m}" for m in lines], ""])
    print(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "candidate_decoder.md").write_text(report)
    np.save(out_dir / "candidate_decoder_test_scores.npy", chosen["s_test"])
    (out_dir / "candidate_decoder.json").write_text(json.dumps(
        [{k: v for k, v in r.items() if k != "s_test"} for r in results], indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--dir", type=Path, default=Path(".gpu_c"))
    r = sub.add_parser("run")
    r.add_argument("--weights", type=Path, nargs="+", required=True)
    r.add_argument("--dir", type=Path, default=Path(".gpu_c"))
    r.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    r.add_argument("--lr", type=float, nargs="+", default=[2e-5, 5e-5])
    r.add_argument("--epochs", type=int, default=3)
    r.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.dir)
    else:
        run(args.weights, args.dir, args.out, args.lr, args.epochs, args.batch)


if __name__ == "__main__":
    main()
