"""Detoxifier check on VALIDATION pairs (used to choose training settings; the test split is eval_detox's):

    python benchmarks/detox_val.py [weights_dir]      # default: the served CPU build

For 40 validation pairs, told their own hazard category (or none, for a category outside the taxonomy): does the
decline give that category's reason (`prompts.CATEGORY_TEXT`), and does it quote a short request where the
rule-written target does? Prints the counts and the most common declines.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.eval_detox import served_detoxifier  # noqa: E402  (sets the offline environment)
from mllm_protector.detox import Detoxifier  # noqa: E402
from mllm_protector.export import detox_data  # noqa: E402
from mllm_protector.prompts import CATEGORY_TEXT, category_text, first_sentence  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights_dir", nargs="?", type=Path, default=None)
    parser.add_argument("--pairs", type=int, default=40)
    args = parser.parse_args()

    detoxifier = Detoxifier(args.weights_dir or served_detoxifier(), max_new_tokens=64)
    pairs = detox_data.pairs("val")
    pairs = pairs[:: max(1, len(pairs) // args.pairs)][: args.pairs]
    reason = quote = 0
    declines: Counter[str] = Counter()
    for p in pairs:
        category = p["category"] if p["category"] in CATEGORY_TEXT else None
        decline = first_sentence(detoxifier.declines([p["prompt"]], [p["answer"]], [False], [category])[0])
        reason += category_text(category)[0] in decline
        quote += ('"' in p["target"]) == ('"' in decline)
        declines[decline[:70]] += 1
    print(f"{len(pairs)} validation pairs: the told category's reason in {reason}, quote decision as the target's in "
          f"{quote}")
    for text, n in declines.most_common(5):
        print(f"  {n:3d}  {text}")


if __name__ == "__main__":
    main()
