"""The harm classifier's ONNX file in an onnxruntime session, scoring a whole Triton batch per `execute`.

Used by `model_repository/harm_classifier/1/model.py` on the CPU default (where Triton's native onnxruntime backend
is not available) and by the evaluation / benchmarks. Requests of different sequence lengths are right-padded
(`input_ids` = pad id, `attention_mask` = 0) into one `[sum(rows), max(seq)]` batch; with the mask at 0 the padding
does not change any fp32 score.

A row longer than 512 tokens holds a long pair as whole 512-token windows (`detector_text.encode_windows`); the graph
returns its best window's score.

A dynamically quantised file (int8, `DynamicQuantizeLinear` in the graph) computes its activation scales from the
whole input tensor, so in a batch one pair's score would depend on the pairs and the padding beside it (up to 0.18 on
validation answers), and a long pair's windows would move each other's scores (benign text after a harmful answer took
its first window from 0.991 to 0.986, under the threshold). Such a file is run one window at a time, unpadded, and a
long pair keeps its best window's outputs, as the graph does: a score depends on the window alone, whatever it was
batched with, and equals the score the threshold was calibrated on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mllm_protector.detector_text import MAX_LENGTH, MAX_WINDOWS, encode_windows
from mllm_protector.tensors import InputError

FEATURES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "harm_score"
# BERT position embeddings: one window cannot be longer; a longer row must be whole windows
WINDOW_LENGTH = MAX_LENGTH


def pad_concat(
    batches: Sequence[Mapping[str, np.ndarray]], names: Sequence[str] = FEATURES, pad_id: int = 0
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Right-pad every `[rows_i, seq_i]` feature to the longest `seq_i` and stack the rows; returns (feeds, rows)."""
    rows = [int(b[names[0]].shape[0]) for b in batches]
    seq = max((int(b[names[0]].shape[1]) for b in batches), default=0)
    feeds = {}
    for name in names:
        fill = pad_id if name == "input_ids" else 0
        out = np.full((sum(rows), seq), fill, dtype=np.int64)
        start = 0
        for b, n in zip(batches, rows, strict=True):
            arr = b[name]
            out[start : start + n, : arr.shape[1]] = arr
            start += n
        feeds[name] = out
    return feeds, rows


def split_rows(array: np.ndarray, rows: Sequence[int]) -> list[np.ndarray]:
    """Undo the stacking of `pad_concat`: one `[rows_i, ...]` slice per request."""
    return np.split(array, np.cumsum(rows)[:-1]) if rows else []


def validate_features(
    features: Mapping[str, np.ndarray | None], names: Sequence[str] = FEATURES, window: int = WINDOW_LENGTH,
    max_windows: int = MAX_WINDOWS,
) -> dict[str, np.ndarray]:
    """Check one request's token tensors (present, 2-D INT64-compatible, same shape, one window or whole windows, not
    too many); raise InputError."""
    out = {}
    for name in names:
        arr = features.get(name)
        if arr is None:
            raise InputError(f"missing required input '{name}'")
        arr = np.asarray(arr)
        if arr.ndim != 2:
            raise InputError(f"input '{name}' must have shape [batch, sequence], got {list(arr.shape)}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"input '{name}' must be INT64, got {arr.dtype}")
        out[name] = arr.astype(np.int64, copy=False)
    shapes = {name: tuple(a.shape) for name, a in out.items()}
    if len(set(shapes.values())) > 1:
        raise InputError(f"inputs must have the same shape, got {shapes}")
    seq = out[names[0]].shape[1]
    if seq == 0:
        raise InputError("inputs must hold at least one token")
    if seq > window and (seq % window or seq // window > max_windows):
        raise InputError(f"sequence length {seq}: at most {window} tokens, or whole {window}-token windows of one pair "
                         f"(at most {max_windows}, {window * max_windows} tokens)")
    return out


class OnnxClassifier:
    """An onnxruntime session over the served `model.onnx` (one output `harm_score` FP32 [batch, 1])."""

    def __init__(
        self,
        model_path: str | Path,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        providers: Sequence[str] | None = None,
        pad_id: int = 0,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(intra_op_threads)  # 0 = onnxruntime's default (physical cores)
        opts.inter_op_num_threads = int(inter_op_threads)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = list(providers or ["CPUExecutionProvider"])
        self.session = ort.InferenceSession(str(model_path), opts, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        missing = set(self.input_names) - set(FEATURES)
        if missing:
            raise ValueError(f"{model_path} has unexpected inputs {sorted(missing)}")
        self.pad_id = pad_id
        self.scores_pairs_alone = _dynamically_quantised(model_path)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every graph output by name for already stacked `[batch, seq]` features: one `session.run`, or one per
        unpadded window for a dynamically quantised file."""
        feeds = {n: feeds[n] for n in self.input_names}
        if not self.scores_pairs_alone or len(feeds["attention_mask"]) == 0:
            return dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))
        rows = [self._run_alone({n: a[i] for n, a in feeds.items()}) for i in range(len(feeds["attention_mask"]))]
        return {name: np.concatenate([r[j] for r in rows]) for j, name in enumerate(self.output_names)}

    def _run_alone(self, row: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One pair's outputs: each of its windows run alone and unpadded, the outputs of the best one."""
        width = len(row["attention_mask"])
        windows = [{n: a[w : w + WINDOW_LENGTH] for n, a in row.items()} for w in range(0, width, WINDOW_LENGTH)]
        attended = [w for k, w in enumerate(windows) if k == 0 or w["attention_mask"].any()]
        outs = [self.session.run(self.output_names, {n: a[None, : max(int(w["attention_mask"].sum()), 1)]
                                                     for n, a in w.items()}) for w in attended]
        best = int(np.argmax([o[self.output_names.index(OUTPUT)][0, 0] for o in outs]))  # first of equals, as ArgMax
        return outs[best]

    def score(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """harm_score [batch, 1] FP32 for stacked features."""
        return self.run(feeds)[OUTPUT]

    def score_requests(
        self, requests: Sequence[Mapping[str, np.ndarray | None]]
    ) -> list[dict[str, np.ndarray] | InputError]:
        """Score a Triton batch: the valid requests are padded together and run once; each result is that request's
        outputs (`harm_score` [rows_i, 1]) or the `InputError` that rejects it alone."""
        results: list[dict[str, np.ndarray] | InputError] = []
        valid: list[tuple[int, dict[str, np.ndarray]]] = []
        for i, req in enumerate(requests):
            try:
                valid.append((i, validate_features(req, self.input_names)))
            except InputError as exc:
                results.append(exc)
                continue
            results.append({})
        if valid:
            feeds, rows = pad_concat([f for _, f in valid], self.input_names, self.pad_id)
            outs = {name: split_rows(arr, rows) for name, arr in self.run(feeds).items()}
            for k, (i, _) in enumerate(valid):
                results[i] = {name: parts[k] for name, parts in outs.items()}
        return results


def _dynamically_quantised(model_path: str | Path) -> bool:
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return any(node.op_type == "DynamicQuantizeLinear" for node in graph.node)


def score_pairs(
    classifier: OnnxClassifier, tokenizer, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 32
) -> np.ndarray:
    """harm_score of each (prompt, response) pair as served (`detector_text.encode_windows`: the whole answer read),
    in input order; pairs are length-sorted into batches so little is padded."""
    prompts, responses = list(prompts), list(responses)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    out = np.zeros(len(prompts), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc, _ = encode_windows(tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx])
        out[idx] = classifier.score(enc)[:, 0]
    return out
