"""The served threshold is the one calibrated on validation data for the file each config serves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mllm_protector.triton_params import parse_config_parameters

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT / "model_repository"
CALIBRATION = json.loads((ROOT / "weights/harm_detector/calibration.json").read_text())
GPU_CONFIGS = [REPO / "protector/config.pbtxt", *(p for p in REPO.glob("protector/configs/*.pbtxt") if p.stem != "cpu")]


def served_threshold(config: Path) -> float:
    return float(parse_config_parameters(config)["harm_threshold"])


@pytest.mark.parametrize("config", GPU_CONFIGS, ids=lambda p: p.name)
def test_gpu_protector_threshold_is_the_fp32_one(config):
    # the GPU configs serve model.onnx (onnxruntime backend) or an engine built from it
    assert served_threshold(config) == pytest.approx(CALIBRATION["threshold"], abs=1e-4)


def test_cpu_protector_threshold_belongs_to_the_served_classifier_file():
    from mllm_protector.export.detector_calibrate import threshold_for_file

    served_file = parse_config_parameters(REPO / "harm_classifier/configs/cpu.pbtxt")["model_filename"]
    assert served_threshold(REPO / "protector/configs/cpu.pbtxt") == pytest.approx(
        threshold_for_file(served_file, CALIBRATION), abs=1e-5)


def test_int8_threshold_recomputes_from_the_built_file(tmp_path):
    """The int8 file built on this machine (library versions, CPU) gives the committed threshold its 2% rate."""
    from mllm_protector import harm_data
    from mllm_protector.export import detector_calibrate, detector_model, detector_onnx, detector_train
    from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs

    detector_onnx.build(tmp_path)
    val = harm_data.load_split("val")
    val = [r for r, keep in zip(val, detector_train.calibration_mask(val), strict=True) if keep]
    scores = score_pairs(OnnxClassifier(detector_onnx.served_int8_path(tmp_path)), detector_model.load_tokenizer(),
                         [r["prompt"] for r in val], [r["response"] for r in val])
    threshold = CALIBRATION["int8"]["threshold"]
    recomputed = detector_calibrate.served_threshold(
        detector_train.threshold_for_fpr(scores, detector_train.TARGET_FPR))
    assert recomputed == pytest.approx(threshold, abs=2e-3)
    assert float(np.mean(scores >= threshold)) <= detector_train.TARGET_FPR
