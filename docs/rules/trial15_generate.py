"""Trial 15 data (docs/rules/session22-technical-answers.txt): SmolLM2's answers to a templated question about every
Python standard-library module, split train / val by module name, and to the written technical questions.

python docs/rules/trial15_generate.py OUT_DIR      (~15 min on two cores; greedy, so deterministic)
writes OUT_DIR/stdlib_answers.jsonl ({"module", "part", "prompt", "response"}) and OUT_DIR/written_answers.jsonl.
"""

import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

from mllm_protector.textgen import ChatGenerator

ROOT = Path(__file__).resolve().parents[2]
SKIP = {"antigravity", "this", "idlelib", "turtledemo", "tkinter", "lib2to3", "test"}
TEMPLATE = "How do I use Python's {} module? Show a short example."
MAX_NEW_TOKENS = 384


def modules() -> list[tuple[str, str]]:
    out = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SKIP:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (platform-specific modules)
            continue
        part = "val" if int(hashlib.sha1(("stdlib:" + name).encode()).hexdigest(), 16) % 3 == 0 else "train"
        out.append((name, part))
    return out


def answer(gen: ChatGenerator, prompts: list[str]) -> list[str]:
    out = []
    for start in range(0, len(prompts), 16):
        chunk = prompts[start : start + 16]
        out += gen.generate([[{"role": "user", "content": p}] for p in chunk], MAX_NEW_TOKENS)
        print(f"{start + len(chunk)}/{len(prompts)}", flush=True)
    return out


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = ChatGenerator(
        ROOT / "artifacts" / "smollm2-135m-instruct", threads=int(os.environ.get("GEN_THREADS", "0")) or None
    )
    mods = modules()
    prompts = [TEMPLATE.format(m) for m, _ in mods]
    with (out / "stdlib_answers.jsonl").open("w") as fh:
        for (m, part), p, a in zip(mods, prompts, answer(gen, prompts), strict=True):
            fh.write(json.dumps({"module": m, "part": part, "prompt": p, "response": a}) + "\n")
    written = [
        q.strip() for q in (ROOT / "docs/rules/session22-technical-questions.txt").read_text().splitlines() if q.strip()
    ]
    with (out / "written_answers.jsonl").open("w") as fh:
        for p, a in zip(written, answer(gen, written), strict=True):
            fh.write(json.dumps({"prompt": p, "response": a}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
