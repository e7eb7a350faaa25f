"""Information only (session 24, after trials 16-18): does a shorter scoring window remove the length drift without
retraining? The served soup scores every pair in windows of W tokens (overlap W/4), best window counts, each W with its
own 2 % threshold recalibrated on validation; the figures of the trial 16-18 judge.

python docs/rules/window_length.py [W ...]   (default 512 256 128; ~5 min per W on two cores)

With two or more W, it also rows the mean and the minimum of the first two Ws' scores (one threshold recalibrated).
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
from trial16_judge import heldout_sets  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.detector_text import HARMFUL_LABEL, encode_windows  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402


def score(model, tokenizer, pairs: list[tuple[str, str]], width: int, batch: int = 32) -> np.ndarray:
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = np.zeros(len(pairs), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            enc, _ = encode_windows(tokenizer, [pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                                    max_length=width, overlap=width // 4)
            w = min(enc["input_ids"].shape[1], width)
            windows = {k: torch.from_numpy(v.reshape(-1, w)) for k, v in enc.items()}
            p = torch.softmax(model(**windows).logits.float(), dim=-1)[:, HARMFUL_LABEL]
            out[idx] = (p * windows["attention_mask"].any(dim=1)).reshape(len(idx), -1).max(dim=1).values.numpy()
    return out


def main(widths: list[int]) -> None:
    torch.set_num_threads(2)
    random.seed(0)
    val, tok, model = harm_data.load_split("val"), dm.load_tokenizer(), dm.load_trained(dm.WEIGHTS_DIR).eval()
    sets, y = heldout_sets(val), np.array([r["label"] for r in val])
    human = np.array([harm_data.human_labelled(r) for r in val])
    print("| window | threshold | whole AUROC | human-labelled AUROC | whole TPR | joined benign flagged (100) "
          "| harm behind 450 words flagged | docstrings flagged (60) |\n|---|---|---|---|---|---|---|---|")
    sets = {"val": [(r["prompt"], r["response"]) for r in val], **sets}
    scores = {}
    for w in widths:
        scores[str(w)] = {k: score(model, tok, v, w) for k, v in sets.items()}
        row(str(w), scores[str(w)], y, human, val)
    if len(widths) >= 2:
        a, b = scores[str(widths[0])], scores[str(widths[1])]
        row(f"mean({widths[0]}, {widths[1]})", {k: (a[k] + b[k]) / 2 for k in a}, y, human, val)
        row(f"min({widths[0]}, {widths[1]})", {k: np.minimum(a[k], b[k]) for k in a}, y, human, val)


def row(name: str, s: dict[str, np.ndarray], y: np.ndarray, human: np.ndarray, val: list[dict]) -> None:
    v = s["val"]
    thr = dt.threshold_for_fpr(v[dt.calibration_mask(val)], dt.TARGET_FPR)
    print(f"| {name} | {thr:.4f} | {roc_auc_score(y, v):.4f} | {roc_auc_score(y[human], v[human]):.4f} "
          f"| {(v[y == 1] >= thr).mean():.3f} | {int((s['joined_benign'] >= thr).sum())} "
          f"| {(s['harm_behind_450'] >= thr).mean():.3f} | {int((s['docstrings'] >= thr).sum())} |", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [512, 256, 128])
