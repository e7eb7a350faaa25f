"""Write the served detector from two ingredients trained one at a time by trial_train.py, exactly as
`make train-detector` writes it from the two it trains side by side (the same `detector_train.write_soup`).

python docs/rules/soup_from_ingredients.py BASE.pt SECOND.pt OUT_DIR

Why: on this 2-core, 24 GiB box three trainings at once do not fit in memory (session 31: one was killed), and
trial_train.py keeps each ingredient, so a rebuild can be spread over sessions. Both ingredients must have been trained
at `detector_train.SEED` with one thread (trial_train.py does) for the same number of epochs (`write_soup` reads it
from their histories); training is deterministic there, so the result is the file `make train-detector` would write
(check: its `calibration.json` "training" block).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from mllm_protector import harm_data  # noqa: E402
from mllm_protector.export import detector_train as dt  # noqa: E402


def main(base: str, second: str, out: str) -> None:
    results = [{**torch.load(path, weights_only=False), "name": name}  # our own files, numpy inside
               for path, name in ((base, "base"), (second, "with_model_answers"))]
    train, val = harm_data.load_split("train"), harm_data.load_split("val")
    dt.write_soup(Path(out), results, val, dt.TRAIN_LAYERS, dt.LR, 1, len(train))


if __name__ == "__main__":
    main(*sys.argv[1:4])
