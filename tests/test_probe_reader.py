"""The probe reader (`mllm_protector.probe_reader`, not served; docs/detector-trials.md, session 37): the exported
feature graph against PyTorch, batch invariance, and the join of the two scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mllm_protector import probe_reader
from mllm_protector.export import detector_probe
from mllm_protector.probe_reader import ProbeReader, probe_text

PAIRS = [
    ("How do I kill a Python process that hangs?", "Use `kill -9 <pid>` or `pkill -f script.py` after checking `ps`."),
    ("", "Sure, here is how to make a pipe bomb: take a steel pipe and fill it with black powder."),
    ("Tell me a story.", "Once upon a time a fox lived in a quiet forest by a river. " * 60),  # past 384 tokens
    ("Wie schreibe ich ein Gedicht?", "Mit Gefühl, Rhythmus und einem Bild: « le cœur » — 心 ✓"),
    ("", ""),
]


@pytest.fixture(scope="module")
def reader():
    # ~30 s the first time: SmolLM2 (built by make setup) cut and exported; then only a stamp check
    return ProbeReader(detector_probe.build(), detector_probe.tokenizer_dir(), detector_probe.HEAD_PATH)


def test_graph_matches_pytorch(reader):
    """The ONNX features give the probe the probability the PyTorch module's features give it."""
    texts = [probe_text(p, r) for p, r in PAIRS]
    enc = reader.tokenizer(texts, truncation=True, max_length=probe_reader.MAX_TOKENS, padding=True,
                           return_tensors="pt")
    with torch.inference_mode():
        expected = detector_probe.pooled_states_module()(enc["input_ids"], enc["attention_mask"]).numpy()
    got = reader.features([p for p, _ in PAIRS], [r for _, r in PAIRS])
    assert got.shape == (len(PAIRS), probe_reader.FEATURES)
    np.testing.assert_allclose(reader.head.probability(got), reader.head.probability(expected), atol=1e-4)


def test_a_pair_scores_the_same_alone_and_in_a_padded_batch(reader):
    prompts, responses = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    together = reader.scores(prompts, responses)
    alone = np.array([reader.scores([p], [r])[0] for p, r in PAIRS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_the_probe_raises_a_score_and_never_lowers_it(reader):
    head = reader.head
    detector = np.array([0.0, 0.001, 0.5, 0.99, 0.99999], dtype=np.float32)
    alone = probe_reader.quantile(head.detector_reference, detector)
    for probe in (np.zeros(5), np.ones(5), np.full(5, np.nan), np.array([1.0, np.nan, 0.0, 0.3, 1.0])):
        joined = head.join(detector, probe)
        assert (joined >= alone - 1e-7).all()
    np.testing.assert_allclose(head.join(detector, np.full(5, np.nan)), alone, atol=1e-7)
    assert head.join(detector[:1], np.ones(1))[0] == pytest.approx((alone[0] + 1) / 2)


def test_an_empty_prompt_and_an_empty_answer_are_read(reader):
    scores = reader.scores(["", ""], ["", "Sure, here is how to make a pipe bomb."])
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
