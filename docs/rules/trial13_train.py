"""Train one ingredient of trial 13 (docs/rules/session20-qwen-answers.txt) and save its trained tensors.

python docs/rules/trial13_train.py base|t13 OUT.pt   (one torch thread, as the committed weights; ~45 min each)
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


def main(arm: str, out: str) -> None:
    torch.set_num_threads(1)
    if arm == "t13":
        dt.TRAINING_VOICES = TRIAL_VOICES
    train, val = harm_data.load_split("train"), harm_data.load_split("val")
    model, baseline, history, best_epoch, _, s_base, seconds = dt.train_detector(
        train, val, dt.EPOCHS, dt.TRAIN_LAYERS, model_answers=arm != "base")
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k or "modules_to_save" in k}
    torch.save({"state": state, "history": history, "best_epoch": best_epoch, "baseline": baseline,
                "s_base": s_base, "seconds": seconds}, out)
    print(json.dumps({"arm": arm, "history": history, "best_epoch": best_epoch, "seconds": round(seconds)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
