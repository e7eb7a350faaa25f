"""The served detoxifier: SmolLM2-135M-Instruct with the committed LoRA adapter (`weights/detoxifier`, from
`detox_train`) merged in.

- `artifacts/detoxifier/`: the merged model as a plain transformers folder (the GPU config serves it with torch).
- `artifacts/detoxifier/onnx/`: the same weights exported by optimum as a decoder with KV cache (the CPU config
  serves it with onnxruntime). Greedy rewrites are token-for-token those of torch, ~1.5x faster on this CPU: a
  decode step is ~65 ms in onnxruntime vs ~110-130 ms in eager torch, whose per-op overhead dominates a 135M model
  (`benchmarks/results/detox_eval.md`).

Merged once at build time, so serving needs no peft and pays no adapter cost per token.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "detoxifier"
ONNX_SUBDIR = "onnx"
OPSET = 17


def adapter_digest(weights_dir: Path = WEIGHTS_DIR) -> str:
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        h.update((weights_dir / name).read_bytes())
    return h.hexdigest()[:16]


def build(base_dir: Path, out_dir: Path, weights_dir: Path = WEIGHTS_DIR) -> Path:
    """Write the merged model to `out_dir` and its ONNX export to `out_dir/onnx`, unless both are there for this
    adapter already."""
    stamp_path = out_dir / "stamp.json"
    digest = adapter_digest(weights_dir)
    stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    if stamp.get("adapter") != digest:
        _merge(base_dir, out_dir, weights_dir)
        stamp = {"adapter": digest, "base": str(base_dir.name)}
        stamp_path.write_text(json.dumps(stamp) + "\n")
    if stamp.get("onnx") != digest or not (out_dir / ONNX_SUBDIR / "model.onnx").exists():
        _export_onnx(out_dir, out_dir / ONNX_SUBDIR)
        stamp["onnx"] = digest
        stamp_path.write_text(json.dumps(stamp) + "\n")
    return out_dir


def _merge(base_dir: Path, out_dir: Path, weights_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(weights_dir)).merge_and_unload()
    model = model.to(torch.float32)  # the adapter is stored in fp16
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)


def _export_onnx(model_dir: Path, onnx_dir: Path) -> None:
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        main_export(
            str(model_dir),
            output=Path(tmp) / ONNX_SUBDIR,
            task="text-generation-with-past",
            opset=OPSET,
            device="cpu",
            do_validation=False,
        )
        if onnx_dir.exists():
            shutil.rmtree(onnx_dir)
        (Path(tmp) / ONNX_SUBDIR).replace(onnx_dir)
