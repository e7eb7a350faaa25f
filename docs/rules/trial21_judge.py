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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial19_judge import judge  # noqa: E402
from trial_judge import soup_of  # noqa: E402

from mllm_protector.export import detector_model as dm  # noqa: E402


def load(side: str, out: Path):
    return soup_of(side.split("+"), out) if "+" in side else dm.load_trained(Path(side))


def main(served_side: str, trial_side: str, soup_dir: str) -> None:
    judge(lambda: load(served_side, Path(soup_dir, "served")), lambda: load(trial_side, Path(soup_dir, "trial")),
          soup_dir, one_cut=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
