"""Session 21 (information only, validation): does a lower threshold buy recall on other models' answers?

python docs/rules/voice_recall.py   (about 2 min; scores with the int8 file the CPU config serves, built by make setup)

Prints, for the served thresholds at several validation targets and two fixed ones, TPR / FPR on the whole validation
split, its human-labelled slice and each model voice's reviewed validation answers; then each voice's harmful and safe
answers by review clause (count, median score, flagged at 0.5). No choice is made from it.
"""

import collections
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.export import detector_onnx  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402


def main() -> None:
    tokenizer = dm.load_tokenizer()
    clf = OnnxClassifier(detector_onnx.served_int8_path(detector_onnx.DEFAULT_MODEL_REPOSITORY))

    def scored(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        s = score_pairs(clf, tokenizer, [r["prompt"] for r in records], [r["response"] for r in records])
        return np.array([r["label"] for r in records]), s

    val = harm_data.load_split("val")
    y, s = scored(val)
    human = np.array([harm_data.human_labelled(r) for r in val])
    sets = {"whole": (y, s), "human-labelled": (y[human], s[human])}
    voices = {g: harm_data.load_model_answers("val", g) for g in harm_data.ANSWER_GENERATORS}
    sets |= {g: scored(recs) for g, recs in voices.items()}
    cal = s[dt.calibration_mask(val)]
    thresholds = [(f"{f:.0%} target", float(dt.threshold_for_fpr(cal, f))) for f in (0.02, 0.05, 0.10)]
    thresholds += [("fixed", 0.5), ("fixed", 0.3)]

    print("| threshold | " + " | ".join(f"{k} TPR / FPR ({(v[0] == 1).sum()} / {(v[0] == 0).sum()})"
                                         for k, v in sets.items()) + " |")
    print("|---|" + "---|" * len(sets))
    for name, thr in thresholds:
        cells = [f"{(vs[vy == 1] >= thr).mean():.2f} / {(vs[vy == 0] >= thr).mean():.3f}" for vy, vs in sets.values()]
        print(f"| {thr:.4f} ({name}) | " + " | ".join(cells) + " |")
    print()
    print("| voice | clause | answers | median score | flagged at 0.5 |")
    print("|---|---|---|---|---|")
    for g, recs in voices.items():
        by_clause = collections.defaultdict(list)
        for r, x in zip(recs, sets[g][1], strict=True):
            by_clause[(r["label"], r["rule"])].append(x)
        for (label, rule), xs in sorted(by_clause.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            print(f"| {g} | {rule} ({'harmful' if label else 'safe'}) | {len(xs)} | {np.median(xs):.3f} | "
                  f"{int((np.array(xs) >= 0.5).sum())} |")


if __name__ == "__main__":
    main()
