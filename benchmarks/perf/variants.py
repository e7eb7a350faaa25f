"""Copies of the model repository with configuration edits, for before / after measurements.

Nothing here touches `model_repository/`: `make_variant(dst, edits)` lays out `dst/model_repository` (config and
python files copied, everything else - ONNX files, tokenizer - symlinked) and `dst/artifacts` -> the project's
artifacts (the CPU configs name `../artifacts/...` relative to the repository root), then applies `edits` to the
copies of `configs/cpu.pbtxt`.

Edits are written `model.setting=value`, comma-separated, e.g.
    harm_tokenizer.dynamic_batching=off,harm_classifier.dynamic_batching=off    (the "unbatched" detector)
    harm_classifier.instances=2,harm_classifier.param.intra_op_thread_count=1
    protector.queue_delay_us=500,protector.preferred_batch_sizes=4 8 16,mllm.param.threads=2
    protector.bls=serial                                                        (MLLM sub-calls one at a time)
    harm_classifier.patch=length_buckets                  (a code prototype from benchmarks/perf/prototypes.py)
    harm_classifier.param.model_filename=model.onnx        (a file not in the version folder: from artifacts/detector/)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = ROOT / "model_repository"
ARTIFACTS = ROOT / "artifacts"
CONFIG = Path("configs") / "cpu.pbtxt"
_COPIED_SUFFIXES = {".py", ".pbtxt"}


class VariantError(ValueError):
    """An edit that cannot be applied (unknown setting, pattern not found in the config)."""


@dataclass(frozen=True)
class Edit:
    model: str
    # instances | dynamic_batching | queue_delay_us | preferred_batch_sizes | max_batch_size | param.<key> | bls
    setting: str
    value: str

    def __str__(self) -> str:
        return f"{self.model}.{self.setting}={self.value}"


def parse_edits(spec: str | Iterable[str]) -> list[Edit]:
    """`"m.setting=value,m2.setting=value"` (or an iterable of such items) -> edits."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    edits = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, sep, value = item.partition("=")
        model, dot, setting = name.strip().partition(".")
        if not sep or not dot or not model or not setting:
            raise VariantError(f"edit {item!r} is not model.setting=value")
        edits.append(Edit(model, setting.strip(), value.strip()))
    return edits


# ---- config text edits (pbtxt as text: keeps the comments and the layout) --------------------------------------


def _block_span(text: str, name: str) -> tuple[int, int] | None:
    """(start, end) of the `name { ... }` (or `name [ ... ]`) block, brackets matched; None when absent."""
    m = re.search(rf"(?m)^[ \t]*{re.escape(name)}\s*:?\s*([{{\[])", text)
    if m is None:
        return None
    opener = m.group(1)
    closer = "}" if opener == "{" else "]"
    depth, i = 0, m.end() - 1
    while i < len(text):
        if text[i] == opener:
            depth += 1
        elif text[i] == closer:
            depth -= 1
            if depth == 0:
                end = i + 1
                if end < len(text) and text[end] == "\n":
                    end += 1
                return m.start(), end
        i += 1
    raise VariantError(f"unbalanced brackets in the {name} block")


def remove_dynamic_batching(text: str) -> str:
    """The config without its `dynamic_batching { ... }` block (max_batch_size stays: batch-1 requests, no batcher)."""
    span = _block_span(text, "dynamic_batching")
    if span is None:
        raise VariantError("no dynamic_batching block to remove")
    return text[: span[0]] + text[span[1]:]


def _sub_once(pattern: str, repl: str, text: str, what: str) -> str:
    new, n = re.subn(pattern, repl, text, count=1)
    if n != 1:
        raise VariantError(f"{what} not found in the config")
    return new


def set_instance_count(text: str, count: int) -> str:
    span = _block_span(text, "instance_group")
    if span is None:
        raise VariantError("no instance_group in the config")
    block = _sub_once(r"count:\s*\d+", f"count: {int(count)}", text[span[0]: span[1]], "instance_group count")
    return text[: span[0]] + block + text[span[1]:]


def set_queue_delay(text: str, microseconds: int) -> str:
    return _sub_once(r"max_queue_delay_microseconds:\s*\d+", f"max_queue_delay_microseconds: {int(microseconds)}",
                     text, "max_queue_delay_microseconds")


def set_preferred_batch_sizes(text: str, sizes: Iterable[int]) -> str:
    sizes = [int(s) for s in sizes]
    span = _block_span(text, "dynamic_batching")
    if span is None:
        raise VariantError("no dynamic_batching block")
    block = text[span[0]: span[1]]
    block = re.sub(r"\s*preferred_batch_size:\s*\[[^\]]*\]\n?", "\n", block)
    if sizes:
        block = block.replace("{", "{\n  preferred_batch_size: [ " + ", ".join(map(str, sizes)) + " ]", 1)
    return text[: span[0]] + block + text[span[1]:]


def set_max_batch_size(text: str, size: int) -> str:
    return _sub_once(r"(?m)^max_batch_size:\s*\d+", f"max_batch_size: {int(size)}", text, "max_batch_size")


def set_parameter(text: str, key: str, value: str) -> str:
    """Set `parameters { key: "<key>" value: { string_value: "..." } }`; appended when the key is absent."""
    pattern = rf'(key:\s*"{re.escape(key)}"\s*,?\s*value:\s*\{{\s*string_value:\s*)"[^"]*"'
    new, n = re.subn(pattern, lambda m: m.group(1) + f'"{value}"', text, count=1)
    if n:
        return new
    return text.rstrip("\n") + f'\nparameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}\n'


SERIAL_BLS_PATCH = '''

# ---- benchmark variant (benchmarks/perf/variants.py): the MLLM sub-calls of a batch one at a time ----
import asyncio as _bench_asyncio  # noqa: E402

_bench_generate = BlsCalls.generate
_bench_lock = None


async def _bench_serial_generate(self, request):
    global _bench_lock
    if _bench_lock is None:
        _bench_lock = _bench_asyncio.Lock()
    async with _bench_lock:
        return await _bench_generate(self, request)


BlsCalls.generate = _bench_serial_generate
'''


def serialise_bls(bls_source: str) -> str:
    """protector's bls_calls.py with `BlsCalls.generate` behind one lock: what a BLS model that awaits each MLLM call
    in turn (instead of `asyncio.gather`) would do."""
    if "class BlsCalls" not in bls_source or "def generate" not in bls_source:
        raise VariantError("protector/1/bls_calls.py has no BlsCalls.generate to serialise")
    return bls_source + SERIAL_BLS_PATCH


def apply_config_edit(text: str, edit: Edit) -> str:
    s, v = edit.setting, edit.value
    if s == "instances":
        return set_instance_count(text, int(v))
    if s == "dynamic_batching":
        if v.lower() in ("off", "false", "0", "no"):
            return remove_dynamic_batching(text)
        raise VariantError(f"{edit}: only dynamic_batching=off is supported")
    if s == "queue_delay_us":
        return set_queue_delay(text, int(v))
    if s == "preferred_batch_sizes":
        return set_preferred_batch_sizes(text, [int(x) for x in v.replace(";", " ").split()])
    if s == "max_batch_size":
        return set_max_batch_size(text, int(v))
    if s.startswith("param."):
        return set_parameter(text, s[len("param."):], v)
    raise VariantError(f"{edit}: unknown setting {s!r}")


# ---- the copy ------------------------------------------------------------------------------------------------


def _copy_tree(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix in _COPIED_SUFFIXES:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path.resolve(), target)


def make_variant(dst: Path, edits: Iterable[Edit] | str = (), source: Path = REPOSITORY,
                 artifacts: Path = ARTIFACTS) -> Path:
    """Lay out `dst/model_repository` (a copy of `source` with `edits`) and `dst/artifacts`; returns the repository."""
    edits = parse_edits(edits) if isinstance(edits, str) else list(edits)
    repo = Path(dst) / "model_repository"
    if repo.exists():
        shutil.rmtree(repo)
    _copy_tree(Path(source), repo)
    link = Path(dst) / "artifacts"
    if not link.exists() and Path(artifacts).exists():
        os.symlink(Path(artifacts).resolve(), link)
    for edit in edits:
        model_dir = repo / edit.model
        if not model_dir.is_dir():
            raise VariantError(f"{edit}: no model {edit.model!r} in {source}")
        if edit.setting == "bls":
            if edit.value != "serial":
                raise VariantError(f"{edit}: only bls=serial is supported")
            bls = model_dir / "1" / "bls_calls.py"
            if not bls.exists():
                raise VariantError(f"{edit}: {bls} does not exist")
            bls.write_text(serialise_bls(bls.read_text()))
            continue
        if edit.setting == "patch":
            _apply_patch(model_dir, edit)
            continue
        if edit.setting == "param.model_filename":
            _link_model_file(model_dir / "1", edit.value, Path(artifacts))
        config = model_dir / CONFIG
        config.write_text(apply_config_edit(config.read_text(), edit))
    return repo


def _apply_patch(model_dir: Path, edit: Edit) -> None:
    from benchmarks.perf.prototypes import PATCHES

    if edit.value not in PATCHES:
        raise VariantError(f"{edit}: unknown patch; known: {', '.join(PATCHES)}")
    model, source = PATCHES[edit.value]
    if model != edit.model:
        raise VariantError(f"{edit}: patch {edit.value} is for {model}")
    target = model_dir / "1" / "model.py"
    target.write_text(target.read_text() + source)


def _link_model_file(version_dir: Path, name: str, artifacts: Path) -> None:
    """A model file named by an edit (e.g. model.int8.onnx) that is not in the version folder comes from
    artifacts/detector/."""
    target = version_dir / name
    if target.exists():
        return
    candidate = artifacts / "detector" / name
    if not candidate.exists():
        raise VariantError(f"{name} is neither in {version_dir} nor in {candidate.parent}")
    os.symlink(candidate.resolve(), target)
