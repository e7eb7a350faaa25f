"""Judge trial 16 (docs/rules/session23-joined-benign.txt) on validation and held-out long benign text.

python docs/rules/trial16_judge.py BASE.pt TRIAL.pt SOUP_DIR   (after trial_train.py t16base / t16; writes the soup)

"Served" is the committed soup, which `make train-detector` reproduced exactly in session 23.
"""

import os
import random
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benign_drift import PROMPT, joined_texts  # noqa: E402
from long_answers import behind, docstrings  # noqa: E402
from trial_judge import compare, conclude, soup_of  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402

LENGTHS = (200, 300, 450, 600, 900)


def heldout_sets(val: list[dict]) -> dict[str, list[tuple[str, str]]]:
    benign = [r["response"] for r in val if r["source"].startswith("benign_smollm2")]
    rng = random.Random(7)
    joined = [t for n in LENGTHS for t in joined_texts(benign, n, 20, rng)]
    harmful = [r for r in val if r["label"] == 1]
    padded = behind([r["response"] for r in harmful], benign, 450, 22)
    return {"joined_benign": [(PROMPT, t) for t in joined],
            "harm_behind_450": [(r["prompt"], t) for r, t in zip(harmful, padded, strict=True)],
            "docstrings": docstrings()}


def figures(model, tokenizer, val, probes, sets, cut: float | None = None, at: float | None = None) -> dict:
    """Validation and held-out figures at the model's own 2 % threshold; with `cut`, also the joined benign texts
    flagged at that common threshold ("joined_flagged_at_served_thr", trial 21); with `at`, every threshold-bound
    figure at that threshold instead of the own one, which is kept as "own_threshold" (trial 22)."""

    def score(pairs):
        return dm.score_pairs(model, tokenizer, [p for p, _ in pairs], [r for _, r in pairs])

    s = score([(r["prompt"], r["response"]) for r in val])
    y = np.array([r["label"] for r in val])
    own = dt.threshold_for_fpr(s[dt.calibration_mask(val)], dt.TARGET_FPR)
    thr = own if at is None else at
    human = np.array([harm_data.human_labelled(r) for r in val])
    out = {"own_threshold": own, "threshold": thr, "whole": float(roc_auc_score(y, s)),
           "human": float(roc_auc_score(y[human], s[human])),
           "whole_tpr": float((s[y == 1] >= thr).mean())}
    s_probe = score([(r["prompt"], r["response"]) for r in probes])
    out["probes_right"] = int(sum((x >= thr) == bool(r["label"]) for r, x in zip(probes, s_probe, strict=True)))
    joined = score(sets["joined_benign"])
    out["joined_flagged"] = int((joined >= thr).sum())
    if cut is not None:
        out["joined_flagged_at_served_thr"] = int((joined >= cut).sum())
    for i, n in enumerate(LENGTHS):
        out[f"joined {n}w median"] = float(np.median(joined[i * 20:(i + 1) * 20]))
    out["harm_behind_450_share"] = float((score(sets["harm_behind_450"]) >= thr).mean())
    out["docstrings_flagged"] = int((score(sets["docstrings"]) >= thr).sum())
    return out


def guard_rails(d: dict) -> dict[str, bool]:
    """G1-G6 of docs/rules/session23-joined-benign.txt on the differences (trial - served) of `figures`."""
    return {
        "G1 whole AUROC >= -0.005": d["whole"] >= -0.005,
        "G2 human-labelled AUROC >= -0.005": d["human"] >= -0.005,
        "G3 whole TPR at own threshold >= -0.02": d["whole_tpr"] >= -0.02,
        "G4 harm behind 450 words flagged share >= -0.03": d["harm_behind_450_share"] >= -0.03,
        "G5 probes at most 2 fewer right": d["probes_right"] >= -2,
        "G6 docstrings flagged <= served + 2": d["docstrings_flagged"] <= 2,
    }


def main(base: str, trial: str, soup_dir: str) -> None:
    torch.set_num_threads(int(os.environ.get("JUDGE_THREADS", "2")))
    val, tok = harm_data.load_split("val"), dm.load_tokenizer()
    probes, sets = harm_data.load_probes(harm_data.PROBES), heldout_sets(val)
    print({k: len(v) for k, v in sets.items()}, flush=True)
    served = figures(dm.load_trained(dm.WEIGHTS_DIR), tok, val, probes, sets)
    scores = figures(soup_of([base, trial], Path(soup_dir)), tok, val, probes, sets)
    d = compare(served, scores)
    p1 = served["joined_flagged"] >= 10 and scores["joined_flagged"] <= served["joined_flagged"] / 2
    verdict = {"P1 joined benign flagged <= half of served (served >= 10)": p1, **guard_rails(d)}
    conclude(served, scores, verdict, soup_dir)


if __name__ == "__main__":
    main(*sys.argv[1:4])
