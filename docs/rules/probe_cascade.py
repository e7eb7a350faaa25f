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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frozen_backbones as fb  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402

KEYS = ("valall", "v_smollm2", "v_gemma", "v_qwen", "probes", "tech")
VOICES = ("v_smollm2", "v_gemma", "v_qwen")


def main() -> None:
    sets = fb.record_sets()
    labels = {k: np.array([r["label"] for r in v]) for k, v in sets.items()}
    detector = fb.served_scores(sets, KEYS)
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
        blend = fb.quantile_blend(detector, fb.probe_scores("smollm2", sets, fb.TRAIN_ALL, KEYS, c))
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
