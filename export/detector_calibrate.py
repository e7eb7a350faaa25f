"""Calibrate the thresholds of the served detector files on validation: the fp32 ONNX file (GPU configs) and the int8
file the CPU config serves.

    python -m mllm_protector.export.detector_calibrate      (part of `make train-detector`)

Dynamic int8 quantisation moves the scores a little, so each file gets its own threshold for a 2% false-positive rate
on the same hard safe answers (`detector_train.calibration_mask`). This scores validation with both ONNX files
(`detector_onnx.build`), applies the serving rule of issue 3 (int8 is served only if its validation AUROC is at most
0.005 below fp32's), and writes the thresholds to `calibration.json` ("threshold": fp32, "int8") and to the
`harm_threshold` parameter of every protector config (fp32 for the GPU ones, int8 for `configs/cpu.pbtxt`).
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
PROTECTOR_DIR = ROOT / "model_repository" / "protector"
CPU_PROTECTOR_CONFIG = PROTECTOR_DIR / "configs" / "cpu.pbtxt"
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


def calibrate(model_repository: Path = detector_onnx.DEFAULT_MODEL_REPOSITORY,
              weights_dir: Path = dm.WEIGHTS_DIR) -> dict:
    """The new `calibration.json` content: thresholds and validation metrics; raises if int8 may not be served."""
    from mllm_protector import harm_data
    from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs

    detector_onnx.build(model_repository)
    val, calibration = harm_data.load_split("val"), dm.load_calibration(weights_dir)
    y, cal = np.array([r["label"] for r in val]), dt.calibration_mask(val)
    tokenizer = dm.load_tokenizer()

    def calibrated(path: Path) -> tuple[float, dict]:
        s = score_pairs(OnnxClassifier(path), tokenizer, [r["prompt"] for r in val], [r["response"] for r in val])
        threshold = served_threshold(dt.threshold_for_fpr(s[cal], dt.TARGET_FPR))
        flagged = float((s[cal] >= threshold).mean())
        lo, hi = dt.threshold_interval(s[cal], dt.TARGET_FPR)
        return threshold, {**dt.metrics(y, s, threshold), "calibration_safe_set_fpr": flagged,
                           "threshold_5_95_over_resamples": [lo, hi],
                           "tpr_at_threshold_5_95": [float((s[y == 1] >= t).mean()) for t in (hi, lo)]}

    fp32_path, int8_path = detector_onnx.served_model_path(model_repository), detector_onnx.served_int8_path(
        model_repository)
    fp32_threshold, fp32_metrics = calibrated(fp32_path)
    int8_threshold, int8_metrics = calibrated(int8_path)
    drop = fp32_metrics["auroc"] - int8_metrics["auroc"]
    if drop > MAX_AUROC_DROP:
        raise SystemExit(f"int8 validation AUROC {int8_metrics['auroc']:.4f} is {drop:.4f} below fp32's: over the "
                         f"{MAX_AUROC_DROP} allowed; serve model.onnx on CPU (harm_classifier/configs/cpu.pbtxt)")
    calibration["threshold"] = fp32_threshold
    calibration["calibrated_on"] = (f"{int(cal.sum())} safe validation answers (detector_train.calibration_mask), "
                                    f"scored by {fp32_path.name}; rounded up to 5 decimals; score >= threshold is "
                                    "flagged harmful")
    calibration["score"] = ("softmax(logits)[:, 1] of the (prompt, response) pair from detector_text.encode_windows: "
                            "a pair longer than 512 tokens scores as its best 512-token window")
    calibration["validation"]["detector"] = fp32_metrics
    calibration[CALIBRATION_KEY] = {
        "threshold": int8_threshold,
        "file": int8_path.name,
        "calibrated_on": f"the same answers, scored by {int8_path.name}",
        "validation_auroc_drop_vs_fp32": drop,
        "validation": int8_metrics,
    }
    return calibration


def set_threshold(config: Path, threshold: float) -> None:
    text = Path(config).read_text()
    new, count = _THRESHOLD_LINE.subn(lambda m: f"{m[1]}{threshold:.5f}{m[3]}", text)
    if count != 1:
        raise ValueError(f"{config}: expected one harm_threshold parameter line, found {count}")
    Path(config).write_text(new)


def write(calibration: dict, weights_dir: Path = dm.WEIGHTS_DIR, protector_dir: Path = PROTECTOR_DIR) -> None:
    (Path(weights_dir) / dm.CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2) + "\n")
    for config in [protector_dir / "config.pbtxt", *sorted((protector_dir / "configs").glob("*.pbtxt"))]:
        is_cpu = config.name == CPU_PROTECTOR_CONFIG.name
        set_threshold(config, calibration[CALIBRATION_KEY]["threshold"] if is_cpu else calibration["threshold"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-repository", type=Path, default=detector_onnx.DEFAULT_MODEL_REPOSITORY)
    args = parser.parse_args(argv)
    calibration = calibrate(args.model_repository)
    write(calibration)
    fp32, int8 = calibration["validation"]["detector"], calibration[CALIBRATION_KEY]["validation"]
    print(f"{calibration['calibrated_on']}\nthresholds: fp32 {calibration['threshold']:.5f}, int8 "
          f"{calibration[CALIBRATION_KEY]['threshold']:.5f}; validation AUROC fp32 {fp32['auroc']:.4f}, int8 "
          f"{int8['auroc']:.4f}; TPR / FPR at the threshold fp32 {fp32['tpr_at_threshold']:.3f} / "
          f"{fp32['fpr_at_threshold']:.3f}, int8 {int8['tpr_at_threshold']:.3f} / {int8['fpr_at_threshold']:.3f}")
    lo, hi = int8["threshold_5_95_over_resamples"]
    t_lo, t_hi = int8["tpr_at_threshold_5_95"]
    print(f"int8 threshold over 1,000 resamples of the calibration answers: {lo:.4f}-{hi:.4f} (5-95 %), validation "
          f"TPR there {t_lo:.3f}-{t_hi:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
