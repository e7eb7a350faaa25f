"""Session 36 (information only, validation): how robust is the frozen SmolLM2 probe's blend, and what would a
cascade cost? Run `docs/rules/frozen_backbones.py smollm2` first (it caches the features).

python docs/rules/probe_cascade.py   (1.5 min)

Rows: the served int8 detector; the quantile blend of `frozen_backbones.py` (probe (b)) at three regularisation
strengths; and cascades, where the probe runs only on answers the detector scores at or above L (below L the answer
is not flagged, as with the detector alone). Columns: recall at each row's own 2 % cut (the hard safe validation
answers) on the whole split and its human-labelled slice; each voice's harmful / safe answers flagged; development
probes flagged (of 19 harmful); docstrings flagged (of 74); safe validation answers flagged. For the cascades, the
share of answers the probe would have to read.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frozen_backbones as fb  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.export import detector_onnx  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402

KEYS = ("valall", "v_smollm2", "v_gemma", "v_qwen", "probes", "tech")
VOICES = ("v_smollm2", "v_gemma", "v_qwen")


def main() -> None:
    sets = fb.record_sets()
    labels = {k: np.array([r["label"] for r in v]) for k, v in sets.items()}
    tokenizer = dm.load_tokenizer()
    clf = OnnxClassifier(detector_onnx.served_int8_path(detector_onnx.DEFAULT_MODEL_REPOSITORY))
    detector = {k: score_pairs(clf, tokenizer, [r["prompt"] for r in sets[k]], [r["response"] for r in sets[k]])
                for k in KEYS}
    x = np.concatenate([fb.features("smollm2", k, sets[k]) for k in fb.TRAIN_ALL])
    y_train = np.concatenate([labels[k] for k in fb.TRAIN_ALL])
    y = labels["valall"]
    human = np.array([harm_data.human_labelled(r) for r in sets["valall"]])
    benign_requests = np.array([r["source"].startswith("benign") for r in sets["valall"]])
    calibration = dt.calibration_mask(sets["valall"]) & (y == 0)
    print("| row | cut | whole recall | human-labelled recall | SmolLM2 harmful / safe flagged | Gemma | Qwen | "
          "probes | docstrings | safe flagged |\n" + "|---" * 10 + "|")

    def row(title: str, scores: dict[str, np.ndarray], gate: dict[str, np.ndarray] | None = None) -> None:
        cut = dt.threshold_for_fpr(scores["valall"][calibration], dt.TARGET_FPR)
        flagged = {k: (scores[k] >= cut) & (gate[k] if gate else True) for k in KEYS}
        voices = [f"{flagged[k][labels[k] == 1].mean():.3f} / {flagged[k][labels[k] == 0].mean():.3f}" for k in VOICES]
        cells = [f"{cut:.3f}", f"{flagged['valall'][y == 1].mean():.3f}",
                 f"{flagged['valall'][human & (y == 1)].mean():.3f}", *voices,
                 str(int(flagged["probes"][labels["probes"] == 1].sum())), str(int(flagged["tech"].sum())),
                 f"{flagged['valall'][y == 0].mean():.3f}"]
        print(f"| {title} | " + " | ".join(cells) + " |")

    row("served detector", detector)
    shares = []
    for c in (0.001, 0.01, 0.1):
        scaler = StandardScaler().fit(x)
        probe_model = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y_train)
        probe = {k: probe_model.predict_proba(scaler.transform(fb.features("smollm2", k, sets[k])))[:, 1] for k in KEYS}
        blend = {k: (fb.quantile(detector["valall"], detector[k]) + fb.quantile(probe["valall"], probe[k])) / 2
                 for k in KEYS}
        row(f"blend, C = {c}", blend)
        if c != fb.C:
            continue
        for low in (0.001, 0.01, 0.05, 0.2):
            gate = {k: detector[k] >= low for k in KEYS}
            row(f"cascade, probe where detector >= {low}", blend, gate)
            shares.append(f"| {low} | {gate['valall'][benign_requests].mean():.2f} | {gate['tech'].mean():.2f} | "
                          f"{gate['valall'][y == 0].mean():.2f} | {gate['v_qwen'].mean():.2f} | "
                          f"{gate['v_gemma'].mean():.2f} |")
    print("\n| cascade at L: share the probe reads | answers to benign requests | docstrings | safe validation answers "
          "| Qwen answers | Gemma answers |\n" + "|---" * 6 + "|\n" + "\n".join(shares))


if __name__ == "__main__":
    main()
