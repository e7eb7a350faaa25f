"""How much of a trial's recall-at-threshold figures is the threshold itself (information after trial 21's verdict).

python docs/rules/threshold_noise.py OUT.json NAME=SOUP_DIR ...   (e.g. committed=weights/harm_detector)

The 2 % threshold is the next float above the 4th-highest of 158 hard safe validation answers
(`detector_train.calibration_mask`, `threshold_for_fpr`), so one answer moves it. For each soup this prints its own
threshold, the 5 / 50 / 95 % points of that threshold over 1,000 resamples of the 158 answers, whole validation TPR
at each, and the recall figures of trial 16's judge at the FIRST soup's threshold (one cut for all).
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial16_judge import heldout_sets  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402


def main(out: str, *soups: str) -> None:
    torch.set_num_threads(int(os.environ.get("JUDGE_THREADS", "2")))
    val, tok = harm_data.load_split("val"), dm.load_tokenizer()
    probes, sets = harm_data.load_probes(harm_data.PROBES), heldout_sets(val)
    y, cal = np.array([r["label"] for r in val]), dt.calibration_mask(val)
    y_probe = np.array([r["label"] for r in probes])
    rng = np.random.default_rng(0)
    idx = [rng.integers(0, cal.sum(), cal.sum()) for _ in range(1000)]
    report, common = {}, None
    for spec in soups:
        name, path = spec.split("=", 1)
        model = dm.load_trained(Path(path))

        def score(pairs, model=model):
            return dm.score_pairs(model, tok, [p for p, _ in pairs], [r for _, r in pairs])

        s = score([(r["prompt"], r["response"]) for r in val])
        s_harm = score(sets["harm_behind_450"])
        s_probe = score([(r["prompt"], r["response"]) for r in probes])
        thr = dt.threshold_for_fpr(s[cal], dt.TARGET_FPR)
        common = thr if common is None else common
        boot = np.array([dt.threshold_for_fpr(s[cal][i], dt.TARGET_FPR) for i in idx])
        lo, mid, hi = np.percentile(boot, [5, 50, 95])
        top = np.sort(s[cal])[::-1][:8]
        report[name] = {
            "threshold": thr, "threshold_boot_5_50_95": [lo, mid, hi],
            "whole_tpr_at_boot_5_50_95": [float((s[y == 1] >= t).mean()) for t in (lo, mid, hi)],
            "top8_safe_scores": top.tolist(),
            "at_first_threshold": {
                "threshold": common, "whole_tpr": float((s[y == 1] >= common).mean()),
                "calibration_fpr": float((s[cal] >= common).mean()),
                "harm_behind_450_share": float((s_harm >= common).mean()),
                "probes_right": int(((s_probe >= common) == (y_probe == 1)).sum())}}
        print(name, json.dumps(report[name], indent=1), flush=True)
    Path(out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:])
