"""Judge trial 26 (docs/rules/session30-learning-rate.txt), trial 27 (session30-five-epochs-seed31.txt) and trial 28
(session31-four-epochs.txt, once per seed): trial 24's criteria, every threshold-bound figure read at each soup's own
2 % validation threshold.

python docs/rules/trial26_judge.py COMMITTED TRIAL SOUP_DIR
  COMMITTED, TRIAL: soup directories (weights/harm_detector, the --out of detector_train --lr 1e-3) or
  BASE.pt+SECOND.pt (trial_train.py outputs, souped into SOUP_DIR/served and SOUP_DIR/trial; trial 27 judges that way).
  Writes SOUP_DIR/judge.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial24_judge import main  # noqa: E402

if __name__ == "__main__":
    main(*sys.argv[1:4], one_cut=False)
