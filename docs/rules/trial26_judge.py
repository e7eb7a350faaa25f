"""Judge trial 26 (docs/rules/session30-learning-rate.txt): the committed soup against the same recipe at LR 1e-3,
every threshold-bound figure read at each soup's own 2 % validation threshold.

python docs/rules/trial26_judge.py COMMITTED TRIAL SOUP_DIR
  COMMITTED, TRIAL: soup directories (weights/harm_detector, the --out of detector_train --lr 1e-3) or
  BASE.pt+SECOND.pt (trial_train.py outputs, souped into SOUP_DIR/served and SOUP_DIR/trial; trial 27 judges that way,
  docs/rules/session30-five-epochs-seed31.txt). Writes SOUP_DIR/judge.json.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial19_judge import paired_figures  # noqa: E402
from trial21_judge import load  # noqa: E402
from trial_judge import compare, conclude  # noqa: E402


def main(committed: str, trial: str, soup_dir: str) -> None:
    served, scores = paired_figures(lambda: load(committed, Path(soup_dir, "served")),
                                    lambda: load(trial, Path(soup_dir, "trial")))
    d = compare(served, scores)
    verdict = {
        "P1 human-labelled AUROC >= +0.005": d["human"] >= 0.005,
        "G1 whole AUROC >= -0.002": d["whole"] >= -0.002,
        "G2 Qwen answers AUROC >= -0.005": d["qwen"] >= -0.005,
        "G3 Gemma answers AUROC >= -0.02": d["gemma"] >= -0.02,
        "G4 whole TPR, each at its own threshold, >= -0.02": d["whole_tpr"] >= -0.02,
        "G5 harm behind 450 words flagged share, each at its own threshold, >= -0.03":
            d["harm_behind_450_share"] >= -0.03,
        "G6 probes right, each at its own threshold: at most 2 fewer": d["probes_right"] >= -2,
        "G7 docstrings flagged, each at its own threshold, <= committed + 2": d["docstrings_flagged"] <= 2,
        "G8 joined benign flagged, each at its own threshold, <= committed + 10": d["joined_flagged"] <= 10,
        "G9 SmolLM2 answers AUROC >= -0.02": d["smollm2"] >= -0.02,
    }
    conclude(served, scores, verdict, soup_dir)


if __name__ == "__main__":
    main(*sys.argv[1:4])
