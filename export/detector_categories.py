"""Fit the hazard-category head of the harm detector: `harm_categories` = harm_score x P(category | pair).

    python -m mllm_protector.export.detector_categories

A multinomial logistic regression over the trained detector's pooled [CLS] features (the classification head's own
input, so the ONNX graph computes it from a tensor it already has: one 384 x 11 matmul per answer) of every training
pair whose request has a hazard category (harmful answers and refusals alike: the category is the request's topic).
Chosen on nothing but the training split; validation top-1 accuracy on harmful answers is stored with the weights.
Writes `weights/harm_detector/categories.json` (run after `detector_train`; the ONNX export reads it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mllm_protector.detector_text import HARM_CATEGORIES, encode_pairs
from mllm_protector.export import detector_model as dm

CATEGORIES_FILE = "categories.json"
C = 1.0


def pooled_features(model, tokenizer, prompts: list[str], responses: list[str], batch_size: int = 32) -> np.ndarray:
    """The classification head's input (BERT pooler output) for each pair, in input order."""
    import torch

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    out = np.zeros((len(prompts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            enc = encode_pairs(tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx])
            out[idx] = model.bert(**{k: torch.from_numpy(v) for k, v in enc.items()}).pooler_output.numpy()
    return out


def fit(train: list[dict], val: list[dict], model=None, tokenizer=None) -> dict:
    from sklearn.linear_model import LogisticRegression

    model = model if model is not None else dm.load_trained()
    tokenizer = tokenizer if tokenizer is not None else dm.load_tokenizer()
    index = {c: i for i, c in enumerate(HARM_CATEGORIES)}
    train = [r for r in train if r["category"] in index]
    val = [r for r in val if r["category"] in index and r["label"] == 1]
    x = pooled_features(model, tokenizer, [r["prompt"] for r in train], [r["response"] for r in train])
    y = np.array([index[r["category"]] for r in train])
    lr = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(x, y)
    # scikit-learn drops classes absent from the data; the head keeps every category (absent ones get -inf-ish bias)
    coef = np.zeros((len(HARM_CATEGORIES), x.shape[1]), dtype=np.float32)
    intercept = np.full(len(HARM_CATEGORIES), -30.0, dtype=np.float32)
    coef[lr.classes_] = lr.coef_
    intercept[lr.classes_] = lr.intercept_
    xv = pooled_features(model, tokenizer, [r["prompt"] for r in val], [r["response"] for r in val])
    yv = np.array([index[r["category"]] for r in val])
    top1 = float(((xv @ coef.T + intercept).argmax(axis=1) == yv).mean()) if len(val) else float("nan")
    return {
        "categories": list(HARM_CATEGORIES),
        "output": "harm_categories = harm_score * softmax(pooled @ coef.T + intercept)",
        "coef": coef.round(6).tolist(),
        "intercept": intercept.round(6).tolist(),
        "trained_on": {"split": "train", "pairs": len(train),
                       "per_category": {c: int((y == i).sum()) for c, i in index.items()}},
        "validation": {"harmful_answers": len(val), "top1_accuracy": top1},
    }


def load_head(weights_dir: Path = dm.WEIGHTS_DIR) -> tuple[np.ndarray, np.ndarray]:
    """(coef [categories, hidden], intercept [categories]); FileNotFoundError before `fit` ran."""
    data = json.loads((Path(weights_dir) / CATEGORIES_FILE).read_text())
    if tuple(data["categories"]) != HARM_CATEGORIES:
        raise ValueError(f"{CATEGORIES_FILE} lists {data['categories']}, the code {list(HARM_CATEGORIES)}: refit it")
    return np.array(data["coef"], dtype=np.float32), np.array(data["intercept"], dtype=np.float32)


def main(argv: list[str] | None = None) -> None:
    from mllm_protector import harm_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=dm.WEIGHTS_DIR)
    args = ap.parse_args(argv)
    head = fit(harm_data.load_split("train"), harm_data.load_split("val"))
    (args.out / CATEGORIES_FILE).write_text(json.dumps(head) + "\n")
    print(json.dumps({k: head[k] for k in ("trained_on", "validation")}, indent=2))
    print(f"wrote {args.out / CATEGORIES_FILE}")


if __name__ == "__main__":
    main()
