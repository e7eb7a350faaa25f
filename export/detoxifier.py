"""The served detoxifier weights: SmolLM2-135M-Instruct with the committed LoRA adapter (`weights/detoxifier`, from
`detox_train`) merged in, saved as a plain transformers folder (`artifacts/detoxifier`) that `ChatGenerator` loads.

Merged once at build time, so serving needs no peft and pays no adapter cost per token.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "detoxifier"


def adapter_digest(weights_dir: Path = WEIGHTS_DIR) -> str:
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        h.update((weights_dir / name).read_bytes())
    return h.hexdigest()[:16]


def build(base_dir: Path, out_dir: Path, weights_dir: Path = WEIGHTS_DIR) -> Path:
    """Write the merged model to `out_dir` unless it is there for this adapter already."""
    stamp = out_dir / "stamp.json"
    digest = adapter_digest(weights_dir)
    if stamp.exists() and json.loads(stamp.read_text()).get("adapter") == digest:
        return out_dir
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(weights_dir)).merge_and_unload()
    model = model.to(torch.float32)  # the adapter is stored in fp16
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    stamp.write_text(json.dumps({"adapter": digest, "base": str(base_dir.name)}) + "\n")
    return out_dir
