"""The harm detector as ONNX: optimum export, a `harm_score` head appended to the graph, an int8 variant.

`build(model_repository)` writes what Triton serves:
- `harm_classifier/1/model.onnx`: inputs `input_ids`, `attention_mask`, `token_type_ids` (INT64 [batch, seq]),
  outputs `harm_score` (FP32 [batch, 1]) = softmax(logits)[:, HARMFUL_LABEL] and `harm_categories` (FP32
  [batch, 11]) = harm_score x the hazard-category probabilities (`detector_categories`). A row longer than 512 tokens
  is whole 512-token windows of one pair (`detector_text.encode_windows`): the graph scores each window and returns
  the highest score and that window's categories (`add_windows`). The same file runs in
  onnxruntime inside the CPU python-backend model, on Triton's native `onnxruntime_onnx` platform (TensorRT
  accelerator) on GPU, and is the input of `export/tensorrt_engine.py`.
- `harm_tokenizer/1/tokenizer/`: the tokenizer files `encode_pairs` is called with.
- `harm_classifier/1/model.int8.onnx`: the same graph dynamically quantised (`onnxruntime.quantization.
  quantize_dynamic`, int8 weights with per-channel scales, 7-bit range): what the CPU config serves, with its own
  threshold (`export/detector_calibrate.py`). The GPU configs serve the fp32 file.

The detector weights come from `detector_model.load_trained()`. Until the trained weights exist the untrained head
(`new_classifier()`) is exported with a loud warning, so the serving path can be built and tested; the stamp file
records which one was used.

Idempotent: a stamp under `artifacts/detector/` keys the build on this file, `detector_model.py`, the trained
weights and the library versions; a second call only re-copies missing served files.

    python -m mllm_protector.export.detector_onnx [--model-repository model_repository] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

from mllm_protector.detector_text import HARM_CATEGORIES, HARMFUL_LABEL, MAX_LENGTH
from mllm_protector.export import detector_categories, detector_model

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_REPOSITORY = ROOT / "model_repository"
WORK_DIR = ROOT / "artifacts" / "detector"

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "harm_score"
CATEGORIES_OUTPUT = "harm_categories"
CLASSIFIER_MODEL = "harm_classifier"
TOKENIZER_MODEL = "harm_tokenizer"


def served_model_path(model_repository: Path) -> Path:
    return Path(model_repository) / CLASSIFIER_MODEL / "1" / "model.onnx"


def served_int8_path(model_repository: Path) -> Path:
    return Path(model_repository) / CLASSIFIER_MODEL / "1" / "model.int8.onnx"


def cpu_served_path(model_repository: Path) -> Path:
    """The classifier file the CPU config serves: `model_filename` of harm_classifier/configs/cpu.pbtxt."""
    from mllm_protector.triton_params import parse_config_parameters

    version = Path(model_repository) / CLASSIFIER_MODEL
    return version / "1" / parse_config_parameters(version / "configs" / "cpu.pbtxt")["model_filename"]


def served_tokenizer_dir(model_repository: Path) -> Path:
    return Path(model_repository) / TOKENIZER_MODEL / "1" / "tokenizer"


def int8_model_path(work_dir: Path = WORK_DIR) -> Path:
    return Path(work_dir) / "model.int8.onnx"


def load_detector():
    """(model, trained): the trained detector, or the untrained head while the trained weights do not exist yet."""
    load_trained = getattr(detector_model, "load_trained", None)
    if load_trained is not None:
        try:
            return load_trained().eval(), True
        except FileNotFoundError as exc:
            reason = f"trained weights missing ({exc})"
    else:
        reason = "detector_model.load_trained() does not exist yet"
    warnings.warn(
        f"{reason}: exporting the UNTRAINED classifier head; its harm_score is meaningless. Train the detector first.",
        stacklevel=2,
    )
    import torch

    with torch.random.fork_rng():  # the same untrained head on every call, so export and parity tests agree
        torch.manual_seed(0)
        return detector_model.new_classifier().eval(), False


def build(model_repository: Path = DEFAULT_MODEL_REPOSITORY, work_dir: Path = WORK_DIR, force: bool = False) -> Path:
    """Export (if needed) and install the detector into `model_repository`; returns the served `model.onnx` path."""
    model_repository, work_dir = Path(model_repository), Path(work_dir)
    fp32, int8, tok_dir = work_dir / "model.onnx", int8_model_path(work_dir), work_dir / "tokenizer"
    stamp_path = work_dir / "stamp.json"
    key = _build_key()
    stamp = _read_json(stamp_path)
    outputs_exist = fp32.exists() and int8.exists() and (tok_dir / "vocab.txt").exists()
    fresh = not force and stamp.get("key") == key and outputs_exist
    if not fresh:
        stamp = _export(work_dir, key)
        stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    served = served_model_path(model_repository)
    _install_file(fp32, served)
    _install_file(int8, served_int8_path(model_repository))
    _install_tree(tok_dir, served_tokenizer_dir(model_repository))
    return served


def _export(work_dir: Path, key: str) -> dict:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export

    work_dir.mkdir(parents=True, exist_ok=True)
    model, trained = load_detector()
    tokenizer = detector_model.load_tokenizer()
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        hf_dir, onnx_dir = Path(tmp) / "hf", Path(tmp) / "onnx"
        model.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        main_export(
            str(hf_dir),
            output=onnx_dir,
            task="text-classification",
            opset=OPSET,
            device="cpu",
            do_validation=False,
            no_post_process=True,
        )
        graph = add_harm_score(onnx.load(onnx_dir / "model.onnx"))
        graph = add_harm_categories(graph, *category_head(trained, model.config.hidden_size))
        graph = add_windows(graph)
        onnx.checker.check_model(graph)
        tmp_fp32 = Path(tmp) / "model.onnx"
        onnx.save(graph, tmp_fp32)
        tmp_int8 = Path(tmp) / "model.int8.onnx"
        # per-channel weight scales: ~3x closer to fp32 than per-tensor (max |diff| 0.05 vs 0.16 on a steep head) and
        # no slower. reduce_range (7-bit weights): on AVX2 CPUs without VNNI onnxruntime's u8 x s8 kernel adds
        # products pairwise in saturating int16, so full-range weights score differently there than on VNNI CPUs;
        # with 7 bits no sum can saturate and the served threshold holds on every x86 CPU.
        quantize_dynamic(tmp_fp32, tmp_int8, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        tmp_tok = Path(tmp) / "tokenizer"
        tokenizer.save_pretrained(tmp_tok)
        for src, dst in ((tmp_fp32, work_dir / "model.onnx"), (tmp_int8, int8_model_path(work_dir))):
            src.replace(dst)
        if (work_dir / "tokenizer").exists():
            shutil.rmtree(work_dir / "tokenizer")
        tmp_tok.replace(work_dir / "tokenizer")
    return {"key": key, "trained": trained, "opset": OPSET, "harmful_label": HARMFUL_LABEL}


def add_harm_score(model, logits_name: str = "logits", harmful_label: int = HARMFUL_LABEL):
    """Append softmax(logits)[:, label:label+1] as the graph's only output `harm_score` FP32 [batch, 1]."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    if [o.name for o in graph.output] != [logits_name]:
        raise ValueError(f"expected one output {logits_name!r}, got {[o.name for o in graph.output]}")
    batch_dim = graph.output[0].type.tensor_type.shape.dim[0]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([harmful_label], dtype=np.int64), "harm_score_starts"),
            numpy_helper.from_array(np.array([harmful_label + 1], dtype=np.int64), "harm_score_ends"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "harm_score_axes"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Softmax", [logits_name], ["harm_probs"], name="harm_softmax", axis=-1),
            helper.make_node(
                "Slice",
                ["harm_probs", "harm_score_starts", "harm_score_ends", "harm_score_axes"],
                [OUTPUT_NAME],
                name="harm_score_slice",
            ),
        ]
    )
    out = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch_dim.dim_param or "batch_size", 1])
    del graph.output[:]
    graph.output.append(out)
    return model


def category_head(trained: bool, hidden_size: int):
    """The fitted hazard-category head, or an all-zero one (uniform categories) for an untrained detector."""
    import numpy as np

    try:
        return detector_categories.load_head()
    except FileNotFoundError:
        if trained:
            raise FileNotFoundError("weights/harm_detector/categories.json is missing: run "
                                    "python -m mllm_protector.export.detector_categories") from None
        k = len(HARM_CATEGORIES)
        return np.zeros((k, hidden_size), np.float32), np.zeros(k, np.float32)


def add_harm_categories(model, coef, intercept, logits_name: str = "logits"):
    """Add the output `harm_categories` FP32 [batch, categories] = harm_score * softmax(pooled @ coef.T + intercept),
    computed from the classification head's input (the pooled [CLS] vector), after `add_harm_score`."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    head = producers[logits_name]
    if head.op_type == "Add":  # MatMul + Add instead of Gemm
        head = next(producers[i] for i in head.input if i in producers and producers[i].op_type == "MatMul")
    if head.op_type not in ("Gemm", "MatMul"):
        raise ValueError(f"the classifier head is a {head.op_type}, expected Gemm or MatMul")
    pooled = head.input[0]
    graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(np.asarray(coef, np.float32).T), "harm_categories_weight"),
        numpy_helper.from_array(np.asarray(intercept, np.float32), "harm_categories_bias"),
    ])
    graph.node.extend([
        helper.make_node("MatMul", [pooled, "harm_categories_weight"], ["harm_categories_mm"], name="categories_mm"),
        helper.make_node("Add", ["harm_categories_mm", "harm_categories_bias"], ["harm_categories_logits"],
                         name="categories_bias"),
        helper.make_node("Softmax", ["harm_categories_logits"], ["harm_categories_probs"], name="categories_softmax",
                         axis=-1),
        helper.make_node("Mul", ["harm_categories_probs", OUTPUT_NAME], [CATEGORIES_OUTPUT], name="categories_scale"),
    ])
    batch = graph.output[0].type.tensor_type.shape.dim[0].dim_param or "batch_size"
    graph.output.append(helper.make_tensor_value_info(CATEGORIES_OUTPUT, TensorProto.FLOAT,
                                                      [batch, len(intercept)]))
    return model


def add_windows(model, window: int = MAX_LENGTH):
    """Score rows of whole `window`-token windows (`detector_text.encode_windows`): each `[batch, n * window]` input is
    read as `[batch * n, window]`, and each output keeps, per row, its highest-scoring window. A row of at most
    `window` tokens is one window, scored exactly as before; a window with no attended token (padding) scores 0."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    inputs = [i.name for i in graph.input]
    outputs = [o.name for o in graph.output]
    inner = {name: f"window_{name}" for name in (*inputs, *outputs)}
    for node in graph.node:
        node.input[:] = [inner.get(n, n) for n in node.input]
        node.output[:] = [inner.get(n, n) for n in node.output]
    k = graph.output[1].type.tensor_type.shape.dim[1].dim_value
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0], np.int64), "windows_0"),
        numpy_helper.from_array(np.array([1], np.int64), "windows_1"),
        numpy_helper.from_array(np.array([2], np.int64), "windows_2"),
        numpy_helper.from_array(np.array([-1], np.int64), "windows_minus_1"),
        numpy_helper.from_array(np.array([window], np.int64), "windows_width"),
        numpy_helper.from_array(np.array([k], np.int64), "windows_categories"),
        numpy_helper.from_array(np.array(0.0, np.float32), "windows_zero"),
    ])
    mk = helper.make_node
    nodes = [
        mk("Shape", [inputs[0]], ["windows_in_shape"], name="windows_in_shape"),
        mk("Slice", ["windows_in_shape", "windows_0", "windows_1"], ["windows_rows"], name="windows_rows"),
        mk("Slice", ["windows_in_shape", "windows_1", "windows_2"], ["windows_seq"], name="windows_seq"),
        mk("Min", ["windows_seq", "windows_width"], ["windows_len"], name="windows_len"),
        mk("Concat", ["windows_minus_1", "windows_len"], ["windows_shape"], name="windows_shape", axis=0),
        *[mk("Reshape", [name, "windows_shape"], [inner[name]], name=f"windows_{name}") for name in inputs],
        # padding windows (no attended token) score 0, so they never win the max; Where, not a product: with every
        # attention logit masked, FP16 softmax gives NaN there, and NaN * 0 is NaN
        mk("ReduceMax", [inner["attention_mask"]], ["windows_attended"], name="windows_attended", axes=[1],
           keepdims=1),
        mk("Cast", ["windows_attended"], ["windows_valid"], name="windows_valid", to=9),
        mk("Where", ["windows_valid", inner[outputs[0]], "windows_zero"], ["windows_scores"], name="windows_scores"),
        mk("Concat", ["windows_rows", "windows_minus_1"], ["windows_rows_shape"], name="windows_rows_shape", axis=0),
        mk("Reshape", ["windows_scores", "windows_rows_shape"], ["windows_by_row"], name="windows_by_row"),
        mk("ReduceMax", ["windows_by_row"], [outputs[0]], name="windows_max", axes=[1], keepdims=1),
        mk("ArgMax", ["windows_by_row"], ["windows_best"], name="windows_best", axis=1, keepdims=1),
        mk("Concat", ["windows_rows", "windows_minus_1", "windows_categories"], ["windows_cat_shape"],
           name="windows_cat_shape", axis=0),
        mk("Reshape", [inner[outputs[1]], "windows_cat_shape"], ["windows_cats"], name="windows_cats"),
        mk("Unsqueeze", ["windows_best", "windows_2"], ["windows_best3"], name="windows_best3"),
        mk("Concat", ["windows_rows", "windows_1", "windows_categories"], ["windows_pick_shape"],
           name="windows_pick_shape", axis=0),
        mk("Expand", ["windows_best3", "windows_pick_shape"], ["windows_pick"], name="windows_pick"),
        mk("GatherElements", ["windows_cats", "windows_pick"], ["windows_best_cats"], name="windows_gather", axis=1),
        mk("Squeeze", ["windows_best_cats", "windows_1"], [outputs[1]], name="windows_best_categories"),
    ]
    # the window nodes first: a graph's nodes must be topologically sorted
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes[:9])
    graph.node.extend(existing)
    graph.node.extend(nodes[9:])
    return model


def _build_key() -> str:
    h = hashlib.sha256()
    for path in (Path(__file__), Path(detector_model.__file__), Path(detector_categories.__file__)):
        h.update(path.read_bytes())
    weights = Path(detector_model.WEIGHTS_DIR)
    if weights.is_dir():
        for f in sorted(p for p in weights.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(weights)).encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    for dist in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime"):
        try:
            h.update(f"{dist}=={importlib.metadata.version(dist)}".encode())
        except importlib.metadata.PackageNotFoundError:
            pass
    h.update(f"opset{OPSET}label{HARMFUL_LABEL}window{MAX_LENGTH}".encode())
    return h.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _same_file(a: Path, b: Path) -> bool:
    if not b.exists() or a.stat().st_size != b.stat().st_size:
        return False
    return b.stat().st_mtime_ns >= a.stat().st_mtime_ns


def _install_file(src: Path, dst: Path) -> None:
    if _same_file(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copy2(src, tmp)
    tmp.replace(dst)
    # copy2 keeps the source mtime; make the copy at least as new so _same_file sees it as installed
    dst.touch()


def _install_tree(src: Path, dst: Path) -> None:
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    if all(_same_file(src / f, dst / f) for f in files) and dst.exists():
        extra = {p.relative_to(dst) for p in dst.rglob("*") if p.is_file()} - set(files)
        if not extra:
            return
    if dst.exists():
        shutil.rmtree(dst)
    for f in files:
        _install_file(src / f, dst / f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-repository", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR)
    parser.add_argument("--force", action="store_true", help="export again even if up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    served = build(args.model_repository, args.work_dir, force=args.force)
    stamp = _read_json(args.work_dir / "stamp.json")
    print(f"{served} (trained={stamp.get('trained')}) and {served_int8_path(args.model_repository).name} beside it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
