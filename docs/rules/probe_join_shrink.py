"""Session 37 (validation only, after the test verdict; information for the next trial): how the raise-only join
trades other models' answers against harm buried in long benign text, when the probe must out-rank the classifier
by a margin before it raises a score.

    python docs/rules/probe_join_shrink.py      (~4 min; features cached by probe_reader_val.py)

score = q_classifier + w * max(0, q_probe - q_classifier - 2a) (w = 1/2, a = 0: `ProbeHead.join`); each row at its
own 2 % point of the 158 hard safe validation answers. Columns as in probe_reader_val.py; "voices" is the mean recall
over the SmolLM2 / Gemma / Qwen validation answers.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import probe_reader_val as prv  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402
from mllm_protector.probe_reader import quantile  # noqa: E402


def main() -> None:
    sets = prv.record_sets("val")
    y = {k: np.array([r["label"] for r in v]) for k, v in sets.items()}
    d, p, head = prv.scores(sets)
    q_d = {k: quantile(head.detector_reference, s) for k, s in d.items()}
    q_p = {k: quantile(head.probe_reference, s) for k, s in p.items()}
    human = np.array([harm_data.human_labelled(r) for r in sets["val"]])
    cal = dt.calibration_mask(sets["val"]) & (y["val"] == 0)
    print("| join | cut | whole recall | human-labelled recall | voices' recall | safe flagged (whole) | probes | "
          "buried (of 200) |\n" + "|---" * 8 + "|")
    rows = [("classifier alone", d)] + [
        (f"w = {w}, a = {a}", {k: q_d[k] + w * np.maximum(0, q_p[k] - q_d[k] - 2 * a) for k in sets})
        for w, a in ((0.5, 0), (0.5, 0.01), (0.5, 0.025), (0.5, 0.05), (0.35, 0), (0.25, 0))]
    for title, s in rows:
        cut = dt.threshold_for_fpr(s["val"][cal], dt.TARGET_FPR)
        voices = np.mean([(s[k][y[k] == 1] >= cut).mean() for k in ("v_smollm2", "v_gemma", "v_qwen")])
        print(f"| {title} | {cut:.4f} | {(s['val'][y['val'] == 1] >= cut).mean():.3f} | "
              f"{(s['val'][human & (y['val'] == 1)] >= cut).mean():.3f} | {voices:.3f} | "
              f"{(s['val'][y['val'] == 0] >= cut).mean():.3f} | {int((s['probes'][y['probes'] == 1] >= cut).sum())} | "
              f"{int((s['buried'] >= cut).sum())} |")


if __name__ == "__main__":
    main()
