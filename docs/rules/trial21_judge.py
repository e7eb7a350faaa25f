"""Judge trial 21 (docs/rules/session26-second-voice-seed.txt): trial 19's figures, the drift rail read at the
served side's threshold.

python docs/rules/trial21_judge.py SERVED TRIAL SOUP_DIR
  SERVED, TRIAL: a soup directory (e.g. weights/harm_detector) or BASE.pt+SECOND.pt (trial_train.py outputs, souped
  into SOUP_DIR/served and SOUP_DIR/trial). Writes SOUP_DIR/judge.json.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial16_judge import figures, guard_rails, heldout_sets  # noqa: E402
from trial19_judge import voice_figures  # noqa: E402
from trial_judge import VOICES, compare, conclude, soup_of  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402


def load(side: str, out: Path):
    return soup_of(side.split("+"), out) if "+" in side else dm.load_trained(Path(side))


def main(served_side: str, trial_side: str, soup_dir: str) -> None:
    torch.set_num_threads(int(os.environ.get("JUDGE_THREADS", "2")))
    val, tok = harm_data.load_split("val"), dm.load_tokenizer()
    probes, sets = harm_data.load_probes(harm_data.PROBES), heldout_sets(val)
    answers = {v: harm_data.load_model_answers("val", v) for v in VOICES}
    print({k: len(v) for k, v in (sets | answers).items()}, flush=True)
    results, at = [], None
    for side, name in ((served_side, "served"), (trial_side, "trial")):
        model = load(side, Path(soup_dir, name))
        f = figures(model, tok, val, probes, sets)
        at = f["threshold"] if at is None else at  # the served side's cut, for both
        joined = dm.score_pairs(model, tok, *map(list, zip(*sets["joined_benign"], strict=True)))
        f["joined_flagged_at_served_thr"] = int((joined >= at).sum())
        results.append(f | voice_figures(model, tok, answers, f["threshold"]))
    served, scores = results
    d = compare(served, scores)
    verdict = {
        "P1 Gemma answers AUROC >= +0.02": d["gemma"] >= 0.02,
        "P2 Qwen answers AUROC >= -0.005": d["qwen"] >= -0.005,
        **guard_rails(d),
        "G7 joined benign flagged at the served threshold <= served + 10": d["joined_flagged_at_served_thr"] <= 10,
        "G8 SmolLM2 answers AUROC >= -0.02": d["smollm2"] >= -0.02,
    }
    conclude(served, scores, verdict, soup_dir)


if __name__ == "__main__":
    main(*sys.argv[1:4])
