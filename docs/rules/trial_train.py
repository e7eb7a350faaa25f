"""Train one ingredient of a session-20 trial and save its trained tensors (rules: docs/rules/session20-*.txt).

python docs/rules/trial_train.py ARM OUT.pt   (one torch thread, as the committed weights; 20-30 min each)
  base  the base ingredient (must reproduce the committed history)
  t13   second ingredient + Qwen's reviewed training answers
  t14a  second ingredient + disclaimer-framed human-labelled records (harm_data.disclaimer_wrapped)
  t14b  t13 and t14a together (information only)
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402

TRIAL_VOICES = {"smollm2": "ma", "qwen": "qw"}
_served_mix = dt.training_mix


def with_disclaimers(train: list[dict], model_answers: bool = False) -> list[dict]:
    out = _served_mix(train, model_answers)
    if model_answers:
        out += harm_data.disclaimer_wrapped([r for r in train if harm_data.human_labelled(r)])
    return out


def main(arm: str, out: str) -> None:
    torch.set_num_threads(1)
    if arm in ("t13", "t14b"):
        dt.TRAINING_VOICES = TRIAL_VOICES
    if arm in ("t14a", "t14b"):
        dt.training_mix = with_disclaimers
    train, val = harm_data.load_split("train"), harm_data.load_split("val")
    model, baseline, history, best_epoch, _, s_base, seconds = dt.train_detector(
        train, val, dt.EPOCHS, dt.TRAIN_LAYERS, model_answers=arm != "base")
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k or "modules_to_save" in k}
    torch.save({"state": state, "history": history, "best_epoch": best_epoch, "baseline": baseline,
                "s_base": s_base, "seconds": seconds}, out)
    print(json.dumps({"arm": arm, "history": history, "best_epoch": best_epoch, "seconds": round(seconds)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
