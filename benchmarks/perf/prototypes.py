"""Code changes proposed by the load tests, as patches appended to a model's `1/model.py` in a temp copy of the
repository (`<model>.patch=<name>` in benchmarks/perf/variants.py), so that their effect is measured on a real server
before anyone changes the project's code. Each patch replaces one method at import time and says which file the real
change belongs in.
"""

from __future__ import annotations

# harm_classifier: score a dynamic batch in length buckets instead of one run padded to its longest row.
# The real change belongs in src/mllm_protector/onnx_classifier.py (OnnxClassifier.run).
# Rows are right-padded with attention_mask 0, so trimming a bucket to its own longest row changes no score.
LENGTH_BUCKETS = '''

# ---- benchmark prototype (benchmarks/perf/prototypes.py): length-bucketed onnxruntime runs ----
import numpy as _bench_np  # noqa: E402

import mllm_protector.onnx_classifier as _bench_oc  # noqa: E402

_BENCH_RATIO = {ratio}
_BENCH_ROWS = {rows}


def _bench_bucketed_run(self, feeds):
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


def length_buckets(ratio: float = 1.3, rows: int = 8) -> str:
    return LENGTH_BUCKETS.format(ratio=float(ratio), rows=int(rows))


# name -> (model whose 1/model.py gets it, source)
PATCHES = {
    "length_buckets": ("harm_classifier", length_buckets()),
    "length_buckets_16": ("harm_classifier", length_buckets(rows=16)),
}
