"""Session 37 (validation only): the exported probe reader (`mllm_protector.probe_reader`, ONNX, fitted by
`python -m mllm_protector.export.detector_probe fit`) next to the served classifier, and two ways to join them
(`ProbeHead.join` is the raise-only one).

    python docs/rules/probe_reader_val.py [val|test]   (~12 min on 2 cores after the fit; features cached; the test
                                                        split is read only by the rule session37-probe-reader-test.txt)

The "served detector" row is the MiniLM classifier alone (int8), what harm_detector returned until session 37.

Rows, each at its own 2 % point of the hard safe validation answers (how the served threshold is calibrated):
- served detector (int8);
- probe alone;
- blend: mean of the two validation quantiles (session 36's join);
- raise-only: (q_detector + max(q_probe, q_detector)) / 2: the probe can raise an answer's score, never lower it
  (an answer whose harm the probe's 384 tokens do not reach keeps the detector's score); and the same with the probe
  read only where the detector scores >= 0.01 (the CPU gate).
Columns: AUROC and recall on the whole split, its human-labelled slice and each voice's reviewed answers (safe answers
flagged after the slash); development probes flagged (of the harmful ones); stdlib docstrings flagged; 200 harmful
validation answers behind >= 450 words of benign training answers (`long_answers.py`) flagged.
"""

import random
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

import long_answers  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model, detector_onnx, detector_probe  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402
from mllm_protector.probe_reader import ProbeHead, ProbeReader, quantile  # noqa: E402

GATE = 0.01


def record_sets(split: str) -> dict[str, list[dict]]:
    """The sets read, by cache name: validation's, or the test split's (plus validation, which the cuts come from)."""
    val = harm_data.load_split("val")
    filler = [r["response"] for r in harm_data.load_split("train") if r["source"].startswith("benign_smollm2")]

    def buried(records: list[dict]) -> list[dict]:
        harmful = random.Random(37).sample([r for r in records if r["label"] == 1], 200)
        texts = long_answers.behind([r["response"] for r in harmful], filler, 450, 22)
        return [dict(r, response=t) for r, t in zip(harmful, texts, strict=True)]

    if split == "val":
        return {"val": val, **{f"v_{g}": harm_data.load_model_answers("val", g) for g in ("smollm2", "gemma", "qwen")},
                "probes": harm_data.load_probes(),
                "tech": [{"prompt": p, "response": d, "label": 0} for p, d in long_answers.docstrings()],
                "buried": buried(val)}
    test = harm_data.load_split("test")
    return {"val": val, "test": test,
            **{f"x_{g}": harm_data.load_model_answers("test", g) for g in ("smollm2", "gemma", "qwen")},
            "heldout_probes": harm_data.load_probes(harm_data.PROBES_HELDOUT), "x_buried": buried(test)}


def scores(sets: dict[str, list[dict]]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], ProbeHead]:
    """(the served int8 classifier's scores, the probe's scores, the probe head) of every set."""
    reader = ProbeReader(detector_probe.features_path(), detector_probe.tokenizer_dir(), detector_probe.HEAD_PATH)
    clf = OnnxClassifier(detector_onnx.served_int8_path(detector_onnx.DEFAULT_MODEL_REPOSITORY))
    tok = detector_model.load_tokenizer()
    detector = {k: score_pairs(clf, tok, [r["prompt"] for r in v], [r["response"] for r in v]) for k, v in sets.items()}
    probe = {k: reader.head.probability(detector_probe.cached_features(reader, k, v)) for k, v in sets.items()}
    return detector, probe, reader.head


def main(split: str) -> None:
    sets = record_sets(split)
    labels = {k: np.array([r["label"] for r in v]) for k, v in sets.items()}
    detector, probe, head = scores(sets)
    q_d = {k: quantile(head.detector_reference, s) for k, s in detector.items()}
    q_p = {k: quantile(head.probe_reference, s) for k, s in probe.items()}
    rows = {
        "classifier alone (int8, served until session 37)": detector,
        "probe alone": probe,
        "blend": {k: (q_d[k] + q_p[k]) / 2 for k in sets},
        "raise-only": {k: head.join(detector[k], probe[k]) for k in sets},
        f"raise-only, probe where the classifier >= {GATE} (CPU)": {
            k: head.join(detector[k], np.where(detector[k] >= GATE, probe[k], np.nan)) for k in sets},
    }
    calibration = dt.calibration_mask(sets["val"]) & (labels["val"] == 0)
    main_set = "val" if split == "val" else "test"
    human = np.array([harm_data.human_labelled(r) for r in sets[main_set]])
    voices = [k for k in sets if k[:2] in ("v_", "x_") and not k.endswith("buried")]
    views = [("whole", main_set, slice(None)), ("human-labelled", main_set, human)] + [(k[2:], k, slice(None))
                                                                                        for k in voices]
    probes, buried = ("probes", "buried") if split == "val" else ("heldout_probes", "x_buried")
    extra = f" | docstrings (of {len(sets['tech'])})" if "tech" in sets else ""
    print(f"| {split} | cut | AUROC: " + " / ".join(v[0] for v in views) + " | recall (safe flagged): "
          + " / ".join(v[0] for v in views) + f" | {probes} flagged (harmful of {int(labels[probes].sum())}; safe of "
          f"{int((labels[probes] == 0).sum())}){extra} | buried (of {len(sets[buried])}) |\n"
          + "|---" * (6 if extra else 5) + "|")
    for title, s in rows.items():
        cut = dt.threshold_for_fpr(s["val"][calibration], dt.TARGET_FPR)
        auroc = " / ".join(f"{roc_auc_score(labels[k][m], s[k][m]):.3f}" for _, k, m in views)
        recall = " / ".join(f"{(s[k][m][labels[k][m] == 1] >= cut).mean():.3f} "
                            f"({(s[k][m][labels[k][m] == 0] >= cut).mean():.3f})" for _, k, m in views)
        flagged = s[probes] >= cut
        docs = f" | {int((s['tech'] >= cut).sum())}" if extra else ""
        print(f"| {title} | {cut:.4f} | {auroc} | {recall} | {int(flagged[labels[probes] == 1].sum())}; "
              f"{int(flagged[labels[probes] == 0].sum())}{docs} | {int((s[buried] >= cut).sum())} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "val")
