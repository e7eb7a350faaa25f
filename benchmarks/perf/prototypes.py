"""Code changes proposed by the load tests, as patches appended to a model's `1/model.py` in a temp copy of the
repository (`<model>.patch=<name>` in benchmarks/perf/variants.py), so that their effect is measured on a real server
before anyone changes the project's code. Each patch replaces one method at import time and says which file the real
change belongs in.
"""

from __future__ import annotations

# harm_classifier: score a dynamic batch in length buckets instead of one run padded to its longest row.
# The real change belongs in src/mllm_protector/onnx_classifier.py (OnnxClassifier.run).
# Rows are right-padded with attention_mask 0, so trimming a bucket to its own longest row changes no fp32 score. A
# dynamically quantised file is already scored one unpadded pair at a time (the served int8): left as it is.
LENGTH_BUCKETS = '''

# ---- benchmark prototype (benchmarks/perf/prototypes.py): length-bucketed onnxruntime runs ----
import numpy as _bench_np  # noqa: E402

import mllm_protector.onnx_classifier as _bench_oc  # noqa: E402

_BENCH_RATIO = {ratio}
_BENCH_ROWS = {rows}


_bench_original_run = _bench_oc.OnnxClassifier.run


def _bench_bucketed_run(self, feeds):
    if self.scores_pairs_alone:
        return _bench_original_run(self, feeds)
    lengths = feeds["attention_mask"].sum(axis=1)
    order = _bench_np.argsort(lengths, kind="stable")
    n, start, outs = len(order), 0, None
    while start < n:
        first = max(int(lengths[order[start]]), 1)
        end = start + 1
        while end < n and end - start < _BENCH_ROWS and lengths[order[end]] <= _BENCH_RATIO * first:
            end += 1
        idx = order[start:end]
        width = max(int(lengths[idx].max()), 1)
        part = self.session.run(self.output_names, {{k: feeds[k][idx, :width] for k in self.input_names}})
        if outs is None:
            outs = [_bench_np.empty((n, *p.shape[1:]), dtype=p.dtype) for p in part]
        for out, p in zip(outs, part):
            out[idx] = p
        start = end
    return dict(zip(self.output_names, outs))


_bench_oc.OnnxClassifier.run = _bench_bucketed_run
'''


# harm_classifier: onnxruntime's intra-op threads sleep instead of spinning when they run out of work. Spinning
# threads burn the cores the tokenizer, the protector and Triton share with them on a 2-core box.
# The real change belongs in src/mllm_protector/onnx_classifier.py (OnnxClassifier.__init__).
NO_SPIN = '''

# ---- benchmark prototype (benchmarks/perf/prototypes.py): onnxruntime threads do not spin ----
import onnxruntime as _bench_ort  # noqa: E402


class _BenchSessionOptions(_bench_ort.SessionOptions):
    def __init__(self):
        super().__init__()
        self.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.add_session_config_entry("session.inter_op.allow_spinning", "0")


_bench_ort.SessionOptions = _BenchSessionOptions
'''


# protector: tokenise the answers in the protector and call harm_classifier directly, instead of the harm_detector
# ensemble (harm_tokenizer -> harm_classifier): one Python model hop and the ensemble scheduling less per score.
# The real change belongs in model_repository/protector/1/bls_calls.py (BlsCalls.score).
TOKENIZE_IN_PROTECTOR = '''

# ---- benchmark prototype (benchmarks/perf/prototypes.py): the protector tokenises, calls harm_classifier ----
from pathlib import Path as _BenchPath  # noqa: E402

from transformers import AutoTokenizer as _BenchAutoTokenizer  # noqa: E402

from mllm_protector.detector_text import encode_pairs as _bench_encode_pairs  # noqa: E402
from mllm_protector.guard import Scores as _BenchScores  # noqa: E402

_BENCH_TOKENIZER = _BenchAutoTokenizer.from_pretrained(
    _BenchPath(__file__).resolve().parents[2] / "harm_tokenizer" / "1" / "tokenizer")


async def _bench_score(self, prompts, responses):
    enc = _bench_encode_pairs(_BENCH_TOKENIZER, list(prompts), list(responses))
    inputs = [pb_utils.Tensor(name, enc[name]) for name in ("input_ids", "attention_mask", "token_type_ids")]
    harm, categories = await self._infer_all("harm_classifier", inputs, ["harm_score", "harm_categories"])
    return _BenchScores(harm=[float(s) for s in harm.reshape(-1)], categories=categories.tolist())


BlsCalls.score = _bench_score
'''


def length_buckets(ratio: float = 1.3, rows: int = 8) -> str:
    return LENGTH_BUCKETS.format(ratio=float(ratio), rows=int(rows))


# name -> (model whose 1/model.py gets it, source)
PATCHES = {
    "length_buckets": ("harm_classifier", length_buckets()),
    "length_buckets_16": ("harm_classifier", length_buckets(rows=16)),
    "no_spin": ("harm_classifier", NO_SPIN),
    "tokenize_in_protector": ("protector", TOKENIZE_IN_PROTECTOR),
}
