"""Safety evaluation: attack success rate with and without MLLM-Protector (see mllm_protector.safety_eval.cli).

    .venv/bin/python benchmarks/eval_safety.py --serve                 # start a local CPU server, built-in set
    .venv/bin/python benchmarks/eval_safety.py --url localhost:8001    # against a running server
    .venv/bin/python benchmarks/eval_safety.py ~/data/MM-SafetyBench --per-group 5 --url host:8001

``--serve`` starts tritonserver on this checkout's model_repository (CPU configs, free ports, via
tests/tritonserver.py) for the run and stops it afterwards; every other option is the console command's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from mllm_protector.safety_eval import cli

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--serve", action="store_true")
    pre.add_argument("--protocol", default="grpc")
    own, rest = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    rest += ["--protocol", own.protocol]
    if "-h" in rest or "--help" in rest:
        print(__doc__)
    if not own.serve or "--report-only" in rest or "-h" in rest or "--help" in rest:
        return cli.main(rest)
    sys.path.insert(0, str(ROOT))
    from tests.tritonserver import ServerStartError, running_server

    print("[eval-safety] starting tritonserver (CPU configs) ...", file=sys.stderr, flush=True)
    try:
        with running_server(ROOT / "model_repository", config_name="cpu", timeout=900) as server:
            url = server.grpc_url if own.protocol == "grpc" else server.http_url
            return cli.main([*rest, "--url", url])
    except ServerStartError as e:
        print(f"eval-safety: the server did not start: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
