"""Trial 33 (session 38): benign technical documentation, for training and for judging technical false alarms.

    python docs/rules/trial33_docs.py data/technical_docs      (~1 min; writes stdlib_docstrings.jsonl)

Training text (1): docstrings of the Python standard library's train-part modules (the split of
`data/technical_answers/`: sha1("stdlib:" + module) % 3 == 0 is the val part, never trained on), the module's own
docstring and those of its public classes and functions, each cleaned and cut to at most 300 words at a line end,
kept when >= 40 words; at most 4 per module, the module docstring first. Each is the answer to a user's question
about that module or object (a deterministic choice of four phrasings, one of them an empty prompt). PSF-licensed
text, label 0 (safe): documentation of the standard library.
(2) the same from the installed third-party packages of `PERMISSIVE` (MIT, BSD or Apache-2.0 licensed) whose
package is in the train part (sha1("pkg:" + package) % 3 != 0), read with `ast` (never imported), at most 3 per file,
a fixed sample of `PACKAGE_PASSAGES`. Both go to stdlib_docstrings.jsonl / package_docstrings.jsonl, committed,
so training does not depend on what this machine has installed.

Judging text (never trained on, built where the judge runs): `heldout_docs()`: the val-part modules' passages made
the same way, module docstrings (>= 120 words) of the held-out part's packages of `PERMISSIVE` installed here,
and the DESCRIPTION of the system's man pages in sections 1 and 8 (>= 80 words; cloud-CLI pages, which are
near-copies of each other, left out), each a fixed sample.
"""

import ast
import hashlib
import importlib
import inspect
import json
import random
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

PERMISSIVE = ("PIL", "accelerate", "aiohttp", "attr", "charset_normalizer", "cloudpickle", "fsspec", "gevent", "grpc",
              "huggingface_hub", "idna", "jinja2", "joblib", "jsonschema", "markdown_it", "mpmath", "multidict",
              "narwhals", "networkx", "numpy", "onnx", "onnxruntime", "optimum", "packaging", "peft", "pip", "pluggy",
              "psutil", "pydantic", "pygments", "requests", "rich", "scipy", "sentence_transformers", "setuptools",
              "sklearn", "sympy", "tokenizers", "torch", "transformers", "tritonclient", "typer", "urllib3", "yaml",
              "zmq", "wrapt", "regex", "shapely", "_pytest", "gguf")
PACKAGE_PASSAGES = 270
SKIP = ("antigravity", "this", "idlelib", "turtledemo", "tkinter")
PROMPTS = ["Explain the Python module {m}.", "What does {q} do in Python?", "How do I use {q}? Explain it.", ""]


def part(module: str) -> str:
    return "val" if int(hashlib.sha1(("stdlib:" + module).encode()).hexdigest(), 16) % 3 == 0 else "train"


def _cut(text: str, words: int = 300) -> str:
    out, n = [], 0
    for line in text.splitlines():
        k = len(line.split())
        if n + k > words and out:
            break
        out.append(line)
        n += k
    return "\n".join(out).strip()


def _passages(name: str, module) -> list[tuple[str, str]]:
    """(qualified name, cut docstring) of the module and its public classes and functions, module first."""
    found = [(name, inspect.getdoc(module) or "")]
    for attr in sorted(vars(module)):
        obj = getattr(module, attr, None)
        if attr.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if getattr(obj, "__module__", None) != name:
            continue
        found.append((f"{name}.{attr}", inspect.getdoc(obj) or ""))
    return [(q, _cut(d)) for q, d in found if len(_cut(d).split()) >= 40]


def stdlib_records(which: str, per_module: int = 4) -> list[dict]:
    out = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SKIP or part(name) != which:
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 (platform-specific modules)
            continue
        for q, doc in _passages(name, module)[:per_module]:
            h = int(hashlib.sha1(("t33:" + q).encode()).hexdigest(), 16)
            out.append({"module": name, "object": q, "part": which,
                        "prompt": PROMPTS[h % len(PROMPTS)].format(m=name, q=q), "response": doc})
    return out


def package_part(package: str) -> str:
    return "val" if int(hashlib.sha1(("pkg:" + package).encode()).hexdigest(), 16) % 3 == 0 else "train"


def _package_files(which: str):
    site = Path(sysconfig.get_paths()["purelib"])
    for package in PERMISSIVE:
        if package_part(package) != which or not (site / package).is_dir():
            continue
        for path in sorted((site / package).rglob("*.py")):
            rel = path.relative_to(site)
            if any("test" in p for p in rel.parts):
                continue
            try:
                tree = ast.parse(path.read_bytes())
            except (SyntaxError, ValueError):
                continue
            yield package, ".".join(rel.with_suffix("").parts).removesuffix(".__init__"), tree


def package_records(rng: random.Random, n: int = PACKAGE_PASSAGES) -> list[dict]:
    found = []
    for package, dotted, tree in _package_files("train"):
        docs = [(dotted, ast.get_docstring(tree) or "")]
        docs += [(f"{dotted}.{node.name}", ast.get_docstring(node) or "") for node in tree.body
                 if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_")]
        docs = [(q, _cut(d)) for q, d in docs if len(_cut(d).split()) >= 40][:3]
        for q, doc in docs:
            h = int(hashlib.sha1(("t33:" + q).encode()).hexdigest(), 16)
            found.append({"module": dotted, "object": q, "package": package, "part": "train",
                          "prompt": PROMPTS[h % len(PROMPTS)].format(m=dotted, q=q), "response": doc})
    return rng.sample(found, min(n, len(found)))


def _third_party(n: int, rng: random.Random) -> list[tuple[str, str]]:
    found = [(f"Explain the Python module {dotted}.", _cut(doc)) for _, dotted, tree in _package_files("val")
             if len((doc := ast.get_docstring(tree) or "").split()) >= 120]
    return rng.sample(found, min(n, len(found)))


def _man_description(page: Path) -> str:
    try:
        text = subprocess.run(["man", "-P", "cat", str(page)], capture_output=True, text=True, timeout=30,
                              env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"}).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = re.sub(r".\x08", "", text)
    m = re.search(r"\nDESCRIPTION\n(.*?)(\n[A-Z][A-Z ]+\n|\Z)", text, re.S)
    return " ".join(" ".join(m.group(1).split()).split()[:300]) if m else ""


def _man_pages(n: int, rng: random.Random) -> list[tuple[str, str]]:
    pages = [p for s in ("man1", "man8") for p in sorted(Path("/usr/share/man", s).glob("*"))
             if not p.name.startswith(("gcloud", "bq", "gsutil"))]
    out = []
    for page in rng.sample(pages, len(pages)):
        text = _man_description(page)
        if len(text.split()) >= 80:
            out.append((f"What does the {page.name.split('.')[0]} command do?", text))
        if len(out) == n:
            break
    return out


def heldout_docs(n: int = 200) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(33)
    return {"stdlib_val_docs": [(r["prompt"], r["response"]) for r in stdlib_records("val")],
            "package_docs": _third_party(n, rng), "man_pages": _man_pages(n, rng)}


def main(out_dir: str) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for name, records in (("stdlib_docstrings.jsonl", stdlib_records("train")),
                          ("package_docstrings.jsonl", package_records(random.Random(3301)))):
        with Path(out_dir, name).open("w") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
        print(f"{len(records)} passages of {len({r['module'] for r in records})} modules -> {out_dir}/{name}")


if __name__ == "__main__":
    main(sys.argv[1])
