"""Calibrate the int8 detector the CPU config serves, on validation, the way training calibrates the fp32 model.

    python -m mllm_protector.export.detector_calibrate      (part of `make train-detector`)

Dynamic int8 quantisation moves the scores a little, so the fp32 threshold does not give the int8 file a 2% benign
false-positive rate. This scores the validation split with both ONNX files (`detector_onnx.build`), applies the serving
rule of issue 3 (int8 is served only if its validation AUROC is at most 0.005 below fp32's), calibrates the int8
threshold on the same safe answers as training (`detector_train.calibration_mask`), and writes it to
`calibration.json` (key "int8") and to the `harm_threshold` of `model_repository/protector/configs/cpu.pbtxt`.
The test split is not read.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from mllm_protector.export import detector_model as dm
from mllm_protector.export import detector_onnx
from mllm_protector.export import detector_train as dt

ROOT = Path(__file__).resolve().parent.parent
CPU_PROTECTOR_CONFIG = ROOT / "model_repository" / "protector" / "configs" / "cpu.pbtxt"
MAX_AUROC_DROP = 0.005
CALIBRATION_KEY = "int8"
_THRESHOLD_LINE = re.compile(r'(key: "harm_threshold", value: \{ string_value: ")([0-9.]+)(" \})')


def served_threshold(threshold: float) -> float:
    """Rounded up to 5 decimals for the config, so rounding never flags more safe answers than calibrated."""
    return math.ceil(threshold * 1e5) / 1e5


def threshold_for_file(name: str, calibration: dict) -> float:
    """The validation-calibrated threshold of the classifier file `name`: the int8 one or the fp32 one."""
    int8 = calibration[CALIBRATION_KEY]
    return int8["threshold"] if name == int8["file"] else calibration["threshold"]


def calibrate(model_repository: Path = detector_onnx.DEFAULT_MODEL_REPOSITORY) -> dict:
    """Validation metrics of fp32 and int8 and the int8 threshold; raises if int8 may not be served."""
    from mllm_protector import harm_data
    from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs

    detector_onnx.build(model_repository)
    val = harm_data.load_split("val")
    y = np.array([r["label"] for r in val])
    cal = dt.calibration_mask(val)
    tokenizer = dm.load_tokenizer()
    prompts, responses = [r["prompt"] for r in val], [r["response"] for r in val]
    fp32 = score_pairs(OnnxClassifier(detector_onnx.served_model_path(model_repository)), tokenizer, prompts, responses)
    int8 = score_pairs(OnnxClassifier(detector_onnx.served_int8_path(model_repository)), tokenizer, prompts, responses)
    fp32_threshold = dm.load_calibration()["threshold"]
    threshold = served_threshold(dt.threshold_for_fpr(int8[cal], dt.TARGET_FPR))
    fp32_metrics, int8_metrics = dt.metrics(y, fp32, fp32_threshold), dt.metrics(y, int8, threshold)
    drop = fp32_metrics["auroc"] - int8_metrics["auroc"]
    if drop > MAX_AUROC_DROP:
        raise SystemExit(f"int8 validation AUROC {int8_metrics['auroc']:.4f} is {drop:.4f} below fp32's: over the "
                         f"{MAX_AUROC_DROP} allowed; serve model.onnx on CPU (harm_classifier/configs/cpu.pbtxt)")
    return {
        "threshold": threshold,
        "file": detector_onnx.served_int8_path(model_repository).name,
        "calibrated_on": "as the fp32 threshold; rounded up to 5 decimals",
        "calibration_safe_set_fpr": float((int8[cal] >= threshold).mean()),
        "validation_auroc_drop_vs_fp32": drop,
        "validation": {"int8": int8_metrics, "fp32_onnx": fp32_metrics},
    }


def write(result: dict, weights_dir: Path = dm.WEIGHTS_DIR, config: Path = CPU_PROTECTOR_CONFIG) -> None:
    path = Path(weights_dir) / dm.CALIBRATION_FILE
    calibration = json.loads(path.read_text())
    calibration[CALIBRATION_KEY] = result
    path.write_text(json.dumps(calibration, indent=2) + "\n")
    text = Path(config).read_text()
    new, count = _THRESHOLD_LINE.subn(lambda m: f"{m[1]}{result['threshold']:.5f}{m[3]}", text)
    if count != 1:
        raise ValueError(f"{config}: expected one harm_threshold parameter line, found {count}")
    Path(config).write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-repository", type=Path, default=detector_onnx.DEFAULT_MODEL_REPOSITORY)
    args = parser.parse_args(argv)
    result = calibrate(args.model_repository)
    write(result)
    v = result["validation"]
    print(f"int8 threshold {result['threshold']:.5f} (fp32 {dm.load_calibration()['threshold']:.5f}); validation "
          f"AUROC int8 {v['int8']['auroc']:.4f} vs fp32 {v['fp32_onnx']['auroc']:.4f}; TPR at threshold "
          f"{v['int8']['tpr_at_threshold']:.3f} vs {v['fp32_onnx']['tpr_at_threshold']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
