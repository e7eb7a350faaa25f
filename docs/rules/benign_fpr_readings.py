"""Session 34 (information only): which safe answers issue 3's "benign FPR" counts, and what each reading gives.

python docs/rules/benign_fpr_readings.py   (about 1 min; the int8 file the CPU config serves, built by make setup)

For 2 % and 5 % of two pools of validation safe answers (all of them; the answers to benign requests), and for the
served threshold (2 % of the hard calibration pool), prints on the test split: FPR on answers to benign requests, FPR
on all safe answers, TPR, the human-labelled slice's FPR / TPR and each model voice's TPR / FPR. No choice is made
from it.
"""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.export import detector_onnx  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402

SERVED_INT8_THRESHOLD = json.loads((dm.WEIGHTS_DIR / "calibration.json").read_text())["int8"]["threshold"]


def main() -> None:
    tokenizer = dm.load_tokenizer()
    clf = OnnxClassifier(detector_onnx.served_int8_path(detector_onnx.DEFAULT_MODEL_REPOSITORY))

    def scored(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        s = score_pairs(clf, tokenizer, [r["prompt"] for r in records], [r["response"] for r in records])
        return np.array([r["label"] for r in records]), s

    val, test = harm_data.load_split("val"), harm_data.load_split("test")
    yv, sv = scored(val)
    yt, st = scored(test)
    benign_v = np.array([r["category"] == "benign" for r in val])
    benign_t = np.array([r["category"] == "benign" for r in test])
    human_t = np.array([harm_data.human_labelled(r) for r in test])
    voices = {g: scored(harm_data.load_model_answers("test", g)) for g in harm_data.ANSWER_GENERATORS}

    print("| reading | threshold | FPR benign requests | FPR all safe | TPR | human-labelled FPR / TPR | "
          + " | ".join(f"{g} TPR / FPR" for g in voices) + " |")
    print("|---" * (6 + len(voices)) + "|")

    def row(name: str, t: float) -> None:
        flagged = st >= t
        cells = [name, f"{t:.5f}", f"{flagged[benign_t].mean():.3f}", f"{flagged[yt == 0].mean():.3f}",
                 f"{flagged[yt == 1].mean():.3f}",
                 f"{flagged[human_t & (yt == 0)].mean():.3f} / {flagged[human_t & (yt == 1)].mean():.3f}"]
        cells += [f"{(s[y == 1] >= t).mean():.3f} / {(s[y == 0] >= t).mean():.3f}" for y, s in voices.values()]
        print("| " + " | ".join(cells) + " |")

    row("served: 2 % of the hard calibration pool", SERVED_INT8_THRESHOLD)
    for target in (0.02, 0.05):
        row(f"{target:.0%} of all validation safe answers", dt.threshold_for_fpr(sv[yv == 0], target))
        row(f"{target:.0%} of validation answers to benign requests",
            dt.threshold_for_fpr(sv[benign_v & (yv == 0)], target))


if __name__ == "__main__":
    main()
