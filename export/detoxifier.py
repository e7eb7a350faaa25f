"""The served detoxifier: SmolLM2-135M-Instruct with the committed LoRA adapter (`weights/detoxifier`, from
`detox_train`) merged in.

- `artifacts/detoxifier/`: the merged model as a plain transformers folder (the GPU config serves it with torch).
- `artifacts/detoxifier/genai/`: the same weights built for onnxruntime-genai (its model builder: fused attention with
  a KV cache), every MatMul then quantised to 8-bit weights in blocks of 32 (MatMulNBits, int8 compute): the CPU config
  serves it. A decode step is ~18 ms on this CPU against ~70 ms for an optimum ONNX export and ~100 ms in eager
  torch: a 135M model's decode is bound by weight reads and per-token overhead, both cut here
  (`benchmarks/results/detox_speed.md`). 4-bit weights were faster still (12 ms) and wrecked the text.

Merged once at build time, so serving needs no peft and pays no adapter cost per token.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "detoxifier"
GENAI_SUBDIR = "genai"
WEIGHT_BITS = 8
BLOCK_SIZE = 32


def adapter_digest(weights_dir: Path = WEIGHTS_DIR) -> str:
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        h.update((weights_dir / name).read_bytes())
    return h.hexdigest()[:16]


def build(base_dir: Path, out_dir: Path, weights_dir: Path = WEIGHTS_DIR, cpu_build: bool = True) -> Path:
    """Write the merged model to `out_dir` and (`cpu_build`) its onnxruntime-genai build to `out_dir/genai`, unless
    they are there for this adapter already."""
    stamp_path = out_dir / "stamp.json"
    digest = adapter_digest(weights_dir)
    stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    if stamp.get("adapter") != digest:
        _merge(base_dir, out_dir, weights_dir)
        stamp = {"adapter": digest, "base": str(base_dir.name)}
        stamp_path.write_text(json.dumps(stamp) + "\n")
    if cpu_build and (stamp.get("genai") != digest or not (out_dir / GENAI_SUBDIR / "genai_config.json").exists()):
        _export_genai(out_dir, out_dir / GENAI_SUBDIR)
        stamp["genai"] = digest
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


def _export_genai(model_dir: Path, genai_dir: Path) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    from onnxruntime_genai.models.builder import create_model

    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        fp32, quantised = Path(tmp) / "fp32", Path(tmp) / GENAI_SUBDIR
        create_model("", str(model_dir), str(fp32), "fp32", "cpu", str(Path(tmp) / "cache"))
        shutil.copytree(fp32, quantised, ignore=shutil.ignore_patterns("model.onnx*"))
        config = DefaultWeightOnlyQuantConfig(block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=4,
                                              bits=WEIGHT_BITS)
        quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32 / "model.onnx")), algo_config=config)
        quantizer.process()
        quantizer.model.save_model_to_file(str(quantised / "model.onnx"), use_external_data_format=True)
        # the folder's tokenizer files are loaded with transformers (textgen), not with genai's tokenizer
        if genai_dir.exists():
            shutil.rmtree(genai_dir)
        quantised.replace(genai_dir)
