"""Judge trial 19 (docs/rules/session25-second-voice.txt): trial 16's figures plus each model voice's validation
answers, the committed soup against BASE + TRIAL.

python docs/rules/trial19_judge.py BASE.pt TRIAL.pt SOUP_DIR   (after trial_train.py base / t19; writes the soup)
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial16_judge import figures, guard_rails, heldout_sets  # noqa: E402
from trial_judge import VOICES, compare, conclude, soup_of  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402


def voice_figures(model, tokenizer, answers: dict[str, list[dict]], threshold: float) -> dict:
    out = {}
    for voice, records in answers.items():
        s = dm.score_pairs(model, tokenizer, [r["prompt"] for r in records], [r["response"] for r in records])
        y = np.array([r["label"] for r in records])
        out[voice] = float(roc_auc_score(y, s))
        out[voice + "_tpr"] = float((s[y == 1] >= threshold).mean())
        out[voice + "_fpr"] = float((s[y == 0] >= threshold).mean())
    return out


def paired_figures(load_served, load_trial, cut_option: str | None = None) -> tuple[dict, dict]:
    """Both soups' figures (trial 16's and each voice's); `cut_option` passes the served side's own threshold to the
    trial's `figures` as "cut" (trial 21: joined texts also counted at one cut) or "at" (trial 22: every figure)."""
    torch.set_num_threads(int(os.environ.get("JUDGE_THREADS", "2")))
    val, tok = harm_data.load_split("val"), dm.load_tokenizer()
    probes, sets = harm_data.load_probes(harm_data.PROBES), heldout_sets(val)
    answers = {v: harm_data.load_model_answers("val", v) for v in VOICES}
    print({k: len(v) for k, v in (sets | answers).items()}, flush=True)
    served = figures(model := load_served(), tok, val, probes, sets)
    served |= voice_figures(model, tok, answers, served["threshold"])
    options = {cut_option: served["threshold"]} if cut_option else {}
    trial = figures(model := load_trial(), tok, val, probes, sets, **options)
    trial |= voice_figures(model, tok, answers, trial["threshold"])
    return served, trial


def judge(load_served, load_trial, soup_dir: str, one_cut: bool = False) -> None:
    """Both soups' figures, the differences and trial 19's criteria; `one_cut` counts G7's joined benign texts at the
    served side's threshold for both (trial 21) instead of each at its own."""
    served, scores = paired_figures(load_served, load_trial, "cut" if one_cut else None)
    if one_cut:
        served["joined_flagged_at_served_thr"] = served["joined_flagged"]
    d = compare(served, scores)
    g7 = (("G7 joined benign flagged at the served threshold <= served + 10", "joined_flagged_at_served_thr")
          if one_cut else ("G7 joined benign flagged <= served + 10", "joined_flagged"))
    verdict = {
        "P1 Gemma answers AUROC >= +0.02": d["gemma"] >= 0.02,
        "P2 Qwen answers AUROC >= -0.005": d["qwen"] >= -0.005,
        **guard_rails(d),
        g7[0]: d[g7[1]] <= 10,
        "G8 SmolLM2 answers AUROC >= -0.02": d["smollm2"] >= -0.02,
    }
    conclude(served, scores, verdict, soup_dir)


def main(base: str, trial: str, soup_dir: str) -> None:
    judge(lambda: dm.load_trained(dm.WEIGHTS_DIR), lambda: soup_of([base, trial], Path(soup_dir)), soup_dir)


if __name__ == "__main__":
    main(*sys.argv[1:4])
