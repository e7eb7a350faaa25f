"""The served detector is a weight soup stored as one LoRA adapter (`detector_train.soup`): it must be exactly the mean
of the merged weights of its ingredients, or the served model is not the one that was chosen on validation."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from mllm_protector.export import detector_train as dt  # noqa: E402


def _random_ingredient(seed: int):
    model = dt.peft_classifier(train_layers=2)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # LoRA factors (B starts at zero) and the fully trained pooler / head
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.eval()


def test_soup_is_the_mean_of_the_merged_ingredients():
    a, b = _random_ingredient(1), _random_ingredient(2)
    souped = dt.soup([a, b], train_layers=2)
    assert souped.peft_config["default"].r == 2 * dt.LORA_R
    merged = [copy.deepcopy(m).merge_and_unload().state_dict() for m in (a, b)]
    s = copy.deepcopy(souped).merge_and_unload().state_dict()
    assert s.keys() == merged[0].keys()
    worst = max(float((s[k] - (merged[0][k] + merged[1][k]) / 2).abs().max()) for k in s)
    assert worst < 1e-5, worst
    # and it is not trivially one of them
    assert max(float((s[k] - merged[0][k]).abs().max()) for k in s) > 1e-3
