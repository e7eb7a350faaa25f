"""`make bench`: the whole perf_analyzer suite in one bounded run (about 10-15 minutes on the 2-core CPU machine),
then the markdown table.

    python benchmarks/bench.py              # everything; writes benchmarks/results/perf/ (report.md, CSV, PNG)
    python benchmarks/bench.py --quick      # a smoke run: shorter windows, fewer points (a few minutes)
    python benchmarks/bench.py --only sweeps,overhead

Phases (each on servers it starts on 127.0.0.1 with free ports, stopped at the end of the phase):
1. `sweeps`    one server with every model: harm_detector and protector guard-only (benign answers) over gRPC and
               HTTP at concurrency 1, 2, 4, 8, 16; the generation-bound suites (guard-only harmful, benign text,
               typographic images, detoxifier) over gRPC at two concurrencies with a fixed request count.
2. `overhead`  same server: bare `mllm` vs `protector` on the same benign-image requests, interleaved round by
               round, at concurrency 1 and 8 (`max_tokens` 16); its medians are also the sweep points.
3. `bls`       a second server from a copy of the repository whose protector awaits its MLLM sub-calls one at a
               time, against the first one, interleaved, at concurrency 8.
4. `batching`  harm_detector with dynamic batching (the repository) vs without (a copy with dynamic_batching removed
               from harm_tokenizer and harm_classifier), two detector-only servers, interleaved, at concurrency 16.

The 1-minute load average is recorded with every figure (the report prints it): take final figures on a quiet
machine. Results of earlier `run_suite ab` experiments and of the soak stay in results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.perf import report as perf_report  # noqa: E402
from benchmarks.perf.cpu import CpuWatch  # noqa: E402
from benchmarks.perf.run_suite import REPOSITORY, RESULTS, Results, Runner, Target, log, server, sigterm_exits  # noqa: E402
from benchmarks.perf.suites import ALL_MODELS  # noqa: E402

PHASES = ("sweeps", "overhead", "bls", "batching")
FAST_SUITES = ("harm_detector", "guard_benign")
SLOW_SUITES = ("guard_harmful", "benign_text", "typographic", "detoxifier")
BUDGET_S = 15 * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: short windows, fewer points and rounds")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases of {', '.join(PHASES)}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the points of earlier runs in results.json")
    parser.add_argument("--wait-load", type=float, default=0.0,
                        help="before each phase, wait until the 1-minute load average is below this (0: don't wait)")
    parser.add_argument("--wait-max-min", type=float, default=30.0, help="... for at most this many minutes")
    args = parser.parse_args(argv)
    phases = [p for p in args.only.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {sorted(unknown)}; known: {', '.join(PHASES)}")
    sigterm_exits()

    results = Results(args.out)
    if not args.keep:  # this run's figures only; `ab:` experiments and the soak are kept (they carry their dates)
        results.data["points"] = []
        results.data["failures"] = []
        for name in ("overhead", "bls", "batching"):
            if name in phases:
                results.data["comparisons"].pop(name, None)
    results.begin_run("bench " + " ".join(argv if argv is not None else sys.argv[1:]))
    runner = Runner(results, scale=0.4 if args.quick else 1.0, max_tokens=args.max_tokens)
    rounds = 1 if args.quick else 2
    fast_c = (1, 4, 16) if args.quick else (1, 2, 4, 8, 16)
    start = time.monotonic()

    def quiet() -> None:
        if args.wait_load > 0:
            wait_for_load(args.wait_load, args.wait_max_min * 60)

    try:
        if {"sweeps", "overhead", "bls"} & set(phases):
            quiet()
            with server(REPOSITORY, ALL_MODELS, "repository") as srv:
                main_target = Target("repository", srv)
                if "sweeps" in phases:
                    runner.sweep(main_target, FAST_SUITES, concurrency=fast_c)
                    quiet()
                    runner.sweep(main_target, SLOW_SUITES, concurrency=(1,) if args.quick else None)
                if "overhead" in phases:
                    quiet()
                    over = runner.overhead(main_target, (1, 8), rounds)
                    _overhead_points(results, over)
                if "bls" in phases:
                    quiet()
                    runner.bls(main_target, (8,), 1 if args.quick else rounds)
        if "batching" in phases:
            quiet()
            runner.batching((16,), 2 if args.quick else 3)
    finally:
        results.end_run()
        report = results.write_report()
    elapsed = time.monotonic() - start
    log(f"bench took {elapsed / 60:.1f} min; report {report}")
    if elapsed > BUDGET_S:
        log(f"WARNING: longer than the {BUDGET_S // 60}-minute budget (load average was high?)")
    print(table(results.data))
    return 0


def wait_for_load(limit: float, max_s: float, poll_s: float = 10.0, others_max: float = 0.25) -> bool:
    """Wait until the machine is quiet: the 1-minute load average below `limit`, or other processes (not this
    benchmark, whose own last phase still weighs on the load average) using less than `others_max` cores over a
    `poll_s` sample. False when `max_s` passed first (then it goes on anyway, and the figures carry the load)."""
    deadline = time.monotonic() + max_s
    while True:
        if os.getloadavg()[0] < limit:
            return True
        with CpuWatch() as watch:
            time.sleep(poll_s)
        if watch.foreign_cores < others_max:
            return True
        if time.monotonic() >= deadline:
            log(f"load {os.getloadavg()[0]:.2f}, others {watch.foreign_cores:.2f} cores after {max_s / 60:.0f} min: "
                "measuring anyway")
            return False
        log(f"waiting for a quiet machine (load {os.getloadavg()[0]:.2f} >= {limit}, others use "
            f"{watch.foreign_cores:.2f} cores)")


def _overhead_points(results: Results, overhead: dict) -> None:
    """The overhead comparison's medians become the `mllm` / `benign_image` sweep points (gRPC)."""
    for row in overhead["rows"]:
        for suite, side in (("mllm", "mllm"), ("benign_image", "protector")):
            s = row[side]
            point = {"suite": suite, "model": "mllm" if suite == "mllm" else "protector", "protocol": "grpc",
                     "concurrency": row["concurrency"], "throughput": s["throughput"], "p50_ms": s["p50_ms"],
                     "p90_ms": s["p99_ms"], "p95_ms": s["p99_ms"], "p99_ms": s["p99_ms"], "avg_ms": s["p50_ms"],
                     "server_queue_ms": 0.0, "server_compute_ms": 0.0, "client_overhead_ms": 0.0,
                     "x_load1": s.get("load1"), "x_rounds": len(s.get("rounds", []))}
            if "flagged_fraction" in s:
                point["x_flagged_fraction"] = s["flagged_fraction"]
            key = (suite, "grpc", row["concurrency"])
            results.data["points"] = [p for p in results.data["points"]
                                      if (p["suite"], p["protocol"], p["concurrency"]) != key] + [point]
    results.save()


def table(data: dict) -> str:
    """What `make bench` prints: the headline figures, then every sweep point."""
    from benchmarks.perf.suites import SUITES

    parts = ["## Headline figures", "", perf_report.headline_table(data), "", "## Sweeps", "",
             perf_report.sweep_table(data, SUITES), ""]
    experiments = perf_report.comparison_table(data)
    if experiments:
        parts += ["## Configuration experiments", "", experiments, ""]
    return "\n".join(parts)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
