"""Judge trial 25 (docs/rules/session29-human-twice-base.txt): trial 24's criteria and one cut.

python docs/rules/trial25_judge.py weights/harm_detector T25BASE.pt+SERVED.pt SOUP_DIR
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial24_judge import main  # noqa: E402

if __name__ == "__main__":
    main(*sys.argv[1:4])
