"""A long fuzzing run of request decoding: the hypothesis properties of tests/test_fuzz_decoding.py with a large,
randomised example budget (the test suite runs a small, reproducible one).

    python benchmarks/fuzz.py                    # 5,000 examples per property
    python benchmarks/fuzz.py --examples 20000

Prints one table row per property (examples, seconds, result) and exits 1 if any property was falsified; hypothesis
prints the shrunk failing input above the table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = "tests/test_fuzz_decoding.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="examples per property")
    args = parser.parse_args(argv)

    env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples), "FUZZ_RANDOM": "1"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", TESTS, "-k", "not seed_images", "-q", "-p", "no:cacheprovider",
         "--durations=0", "-rA"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    elapsed = time.monotonic() - start
    if proc.returncode:
        print(proc.stdout[-20000:], proc.stderr[-5000:], sep="\n")
    durations = {m.group(2): float(m.group(1))
                 for m in re.finditer(r"^([\d.]+)s call\s+\S+::(\w+)", proc.stdout, re.MULTILINE)}
    results = {m.group(2): m.group(1) for m in re.finditer(r"^(PASSED|FAILED|ERROR) \S+::(\w+)", proc.stdout,
                                                              re.MULTILINE)}
    print("\n| property | examples | seconds | result |\n|---|---|---|---|")
    for name in sorted(results):
        print(f"| {name} | {args.examples} | {durations.get(name, 0.0):.1f} | {results[name].lower()} |")
    print(f"\n{len(results)} properties, {elapsed:.0f} s in all (`python benchmarks/fuzz.py --examples "
          f"{args.examples}`)")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
