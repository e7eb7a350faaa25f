"""A second reader for the harm detector, NOT served: a frozen decoder's pooled hidden states and a linear probe.

Session 37 made session 36's proposal servable and judged it on the test split by a rule written first
(docs/rules/session37-probe-reader-test.txt): it doubled recall on other models' harmful answers but lost harmful
answers hidden behind long benign text past the rule's bound, so harm_detector stays the MiniLM classifier alone. The
reader, its export and its fitted probe are kept, tested, for planning's "larger backbone" decision
(docs/detector-trials.md, session 37).

The MiniLM detector ranks the answers it was trained on well but misses many harmful answers written by other models
(docs/detector-trials.md, session 36). A frozen SmolLM2-135M, cut at three quarters of its depth, reads the pair as
"Request: ... / Response: ...", its first `MAX_TOKENS` tokens; `features.onnx` returns the normed hidden state after
the cut layer averaged over them. A logistic regression probe (`weights/harm_probe/probe.npz`,
`export/detector_probe.py`) turns that into a probability. Harm later in a long answer is left to the classifier,
which reads every token in windows. (Reading the
probe in windows too was tried: the best window of long safe answers raised the cut, and every validation figure
fell, docs/detector-trials.md, session 37.)

The two readers are joined on one scale: each score becomes its quantile among the validation split's scores of that
reader (the reference arrays stored with the probe), and the harm score is the mean of the classifier's quantile and
the higher of the two (`ProbeHead.join`): the probe can raise a score, never lower it. Right padding with the
attention mask at 0 leaves every real token's state unchanged in a causal model, so a pair's features do not depend
on what it was batched with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mllm_protector.detector_text import normalize

MAX_TOKENS = 384
CUT_LAYERS = 23  # layers kept (of SmolLM2-135M's 30): three quarters of the depth; the rest is never run
FEATURES = 576  # its hidden size
INPUTS = ("input_ids", "attention_mask")


def probe_text(prompt: str | None, response: str) -> str:
    """The text the probe reads for one (prompt, response) pair; the prompt may be empty."""
    return f"Request: {normalize(prompt or '')}\nResponse: {normalize(response)}"


def quantile(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Share of the sorted `reference` at or below each score."""
    return np.searchsorted(reference, scores, side="right") / len(reference)


class ProbeHead:
    """The fitted probe (standardisation + logistic regression) and the blend's reference quantiles."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path) as f:
            self.mean, self.scale = f["mean"], f["scale"]
            self.coef, self.intercept = f["coef"], float(f["intercept"])
            self.detector_reference = np.sort(f["detector_reference"])
            self.probe_reference = np.sort(f["probe_reference"])
        if self.mean.shape != (FEATURES,) or self.coef.shape != (FEATURES,):
            raise ValueError(f"{path}: expected {FEATURES} features, got {self.mean.shape} / {self.coef.shape}")

    def probability(self, features: np.ndarray) -> np.ndarray:
        logits = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))

    def join(self, detector_scores: np.ndarray, probe_scores: np.ndarray) -> np.ndarray:
        """The harm score: the mean of the detector's quantile among its validation scores and the higher of the
        probe's quantile and the detector's. The probe can raise an answer's score, never lower it: an answer whose
        harm lies beyond the probe's 384 tokens keeps the detector's score (the detector reads every token). Where
        the probe did not read (NaN), the detector's quantile stands alone."""
        q_detector = quantile(self.detector_reference, detector_scores)
        q_probe = np.where(np.isnan(probe_scores), 0.0, quantile(self.probe_reference, np.nan_to_num(probe_scores)))
        return ((q_detector + np.maximum(q_probe, q_detector)) / 2).astype(np.float32)


class ProbeReader:
    """SmolLM2's tokenizer + `features.onnx` in onnxruntime + the probe head."""

    def __init__(self, features_path: str | Path, tokenizer_dir: str | Path, head_path: str | Path | None,
                 intra_op_threads: int = 0) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(intra_op_threads)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(features_path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        self.tokenizer.padding_side = "right"
        self.head = ProbeHead(head_path) if head_path is not None else None

    def features(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 8) -> np.ndarray:
        """[n, FEATURES] float32, in input order: each pair's first MAX_TOKENS tokens; pairs are length-sorted into
        batches so little is padded."""
        texts = [probe_text(p, r) for p, r in zip(prompts, responses, strict=True)]
        out = np.zeros((len(texts), FEATURES), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=MAX_TOKENS, padding=True,
                                 return_tensors="np")
            out[idx] = self.session.run(None, {name: enc[name].astype(np.int64) for name in INPUTS})[0]
        return out

    def scores(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        if self.head is None:
            raise RuntimeError("no probe head loaded")
        return self.head.probability(self.features(prompts, responses))
