"""The served threshold is the one calibrated on validation data, in every protector config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mllm_protector.triton_params import parse_config_parameters

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "model_repository/protector/config.pbtxt", *ROOT.glob("model_repository/protector/configs/*.pbtxt")]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_protector_threshold_is_the_calibrated_one(config):
    calibrated = json.loads((ROOT / "weights/harm_detector/calibration.json").read_text())["threshold"]
    served = float(parse_config_parameters(config)["harm_threshold"])
    assert served == pytest.approx(calibrated, abs=1e-4)
