"""Judge trial 17 (docs/rules/session24-paired-long.txt): the figures and criteria of trial 16.

python docs/rules/trial17_judge.py BASE.pt TRIAL.pt SOUP_DIR   (after trial_train.py t17base / t17; writes the soup)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial16_judge import main  # noqa: E402

if __name__ == "__main__":
    main(*sys.argv[1:4])
