"""The perf_analyzer suite runner: starts tritonserver (loopback, free ports), runs the suites, writes the results.

    python -m benchmarks.perf.run_suite sweep [--suites harm_detector,guard_benign] [--protocols grpc,http]
    python -m benchmarks.perf.run_suite overhead [--rounds 2] [--concurrency 1,8]   # protector vs bare mllm
    python -m benchmarks.perf.run_suite batching [--rounds 3] [--concurrency 16]     # harm_detector batching on/off
    python -m benchmarks.perf.run_suite bls [--rounds 2] [--concurrency 8]          # BLS sub-calls concurrent/serial
    python -m benchmarks.perf.run_suite ab --variant 'harm_classifier.instances=2' --suite guard_benign
    python -m benchmarks.perf.run_suite report                                       # report.md + plots again

Every command adds to `benchmarks/results/perf/results.json` (a point measured again replaces the old one), appends
perf_analyzer's own CSV rows (`-f`) to `<suite>_<protocol>.csv`, and rewrites `report.md` and the PNG plots.

A/B comparisons ("each measured in one run") run both sides in the same invocation, interleaved round by round
(A, B, A, B, ...), so a change in the machine's load hits both sides alike; the figure is the median over rounds.
The 1-minute load average is recorded with every point.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.perf import inputs as perf_inputs  # noqa: E402
from benchmarks.perf import metrics as server_metrics  # noqa: E402
from benchmarks.perf import report as perf_report  # noqa: E402
from benchmarks.perf.analyzer import Measurement, PerfAnalyzer, PerfError, Window  # noqa: E402
from benchmarks.perf.cpu import CpuWatch  # noqa: E402
from benchmarks.perf.suites import ALL_MODELS, DETECTOR_MODELS, SUITES, Suite  # noqa: E402
from benchmarks.perf.variants import make_variant  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "perf"
REPOSITORY = ROOT / "model_repository"
GUARD_MODELS = (*DETECTOR_MODELS, "detoxifier", "protector")
MODEL_SETS = {"all": ALL_MODELS, "detector": DETECTOR_MODELS, "guard": GUARD_MODELS}


def log(msg: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {msg}", file=sys.stderr, flush=True)


def sigterm_exits() -> None:
    """SIGTERM raises SystemExit, so the `finally` blocks stop the servers this process started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# ---- results ---------------------------------------------------------------------------------------------------


class Results:
    """`results.json` (points and headline comparisons, merged across runs) and the per-suite perf_analyzer CSVs."""

    def __init__(self, out_dir: Path = RESULTS) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "results.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.data.setdefault("points", [])
        self.data.setdefault("comparisons", {})
        self.data.setdefault("runs", [])

    def begin_run(self, command: str) -> None:
        self.data["runs"].append({"command": command, "started": _now(), "load_start": _load(),
                                  "commit": _git_commit(), "detector_onnx": _file_stamp(_onnx_path())})
        self.save()

    def end_run(self) -> None:
        if self.data["runs"]:
            self.data["runs"][-1].update({"finished": _now(), "load_end": _load()})
        self.save()

    def add_point(self, m: Measurement, raw_csv: str) -> None:
        key = (m.suite, m.protocol, m.concurrency)
        self.data["points"] = [p for p in self.data["points"]
                               if (p["suite"], p["protocol"], p["concurrency"]) != key] + [m.row()]
        csv_path = self.dir / f"{m.suite}_{m.protocol}.csv"
        lines = [line for line in raw_csv.splitlines() if line.strip()]
        if lines:
            header, rows = lines[0], lines[1:]
            existing = csv_path.read_text().splitlines() if csv_path.exists() else []
            if not existing or existing[0] != header:
                existing = [header]
            # a point measured again replaces its old row
            keep = [r for r in existing[1:] if r.split(",", 1)[0] != str(m.concurrency)]
            body = sorted(keep + rows, key=lambda r: int(float(r.split(",", 1)[0])))
            csv_path.write_text("\n".join([header, *body]) + "\n")
        self.save()

    def add_comparison(self, name: str, value: dict) -> None:
        self.data["comparisons"][name] = {**value, "measured": _now()}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def write_report(self) -> Path:
        return perf_report.write(self.data, self.dir)


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _onnx_path() -> Path:
    return REPOSITORY / "harm_classifier" / "1" / "model.onnx"


def _file_stamp(path: Path) -> dict:
    if not path.exists():
        return {}
    st = path.stat()
    return {"bytes": st.st_size, "mtime": dt.datetime.fromtimestamp(st.st_mtime).astimezone().isoformat("T", "seconds")}


# ---- servers -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def server(repository: Path, models: Sequence[str], label: str) -> Iterator:
    from tests.tritonserver import running_server

    start = time.monotonic()
    log(f"starting tritonserver ({label}: {', '.join(models)})")
    with running_server(repository, models=list(models), timeout=600) as srv:
        log(f"{label} ready in {time.monotonic() - start:.0f} s (http {srv.http_url}, grpc {srv.grpc_url})")
        yield srv


@dataclass
class Target:
    """One server as a side of a measurement."""

    label: str
    srv: object

    def url(self, protocol: str) -> str:
        return self.srv.grpc_url if protocol == "grpc" else self.srv.http_url


# ---- measuring ---------------------------------------------------------------------------------------------------


class Runner:
    def __init__(self, results: Results, scale: float = 1.0, max_tokens: int = 16, analyzer: PerfAnalyzer | None = None,
                 work_dir: Path | None = None) -> None:
        self.results = results
        self.scale = scale
        self.pa = analyzer or PerfAnalyzer()
        self.work = Path(work_dir or tempfile.mkdtemp(prefix="perf-"))
        self.data = perf_inputs.write_all(self.work / "inputs", max_tokens=max_tokens)
        self.max_tokens = max_tokens
        self._warm: set[tuple[str, str]] = set()

    def suite(self, name: str) -> Suite:
        s = SUITES[name]
        return s.scaled(self.scale) if self.scale != 1.0 else s

    def measure(self, target: Target, suite: Suite, protocol: str, concurrency: int, record: bool = True,
                window: Window | None = None, tag: str = "") -> Measurement:
        """One perf_analyzer point against `target`, with the server's metrics delta and the load average."""
        self.warm_up(target, suite, protocol)
        csv_path = self.work / f"{suite.name}-{target.label}-{protocol}-{concurrency}{tag}.csv"
        before = server_metrics.scrape(target.srv.metrics_url)
        load_before = os.getloadavg()[0]
        t0 = time.monotonic()
        window = window or suite.window_for(concurrency)
        watch = CpuWatch([target.srv.pid]).__enter__()
        for attempt in range(3):
            try:
                m = self.pa.measure(suite.model, target.url(protocol), protocol, self.data[suite.inputs],
                                    concurrency, csv_path, window)
                break
            except PerfError as e:
                # a time window holding no request (or a single one) fails: widen it and try again
                retry = "No valid requests" in str(e) or "Failed to obtain stable" in str(e)
                if window.mode != "time" or not retry or attempt == 2:
                    raise
                window = replace(window, interval_ms=window.interval_ms * 3)
                log(f"{suite.name} c={concurrency}: window too short, retrying with {window.interval_ms} ms")
        wall = time.monotonic() - t0
        watch.__exit__(None, None, None)
        d = server_metrics.delta(before, server_metrics.scrape(target.srv.metrics_url))
        m.suite, m.model, m.protocol = suite.name, suite.model, protocol
        m.extra = {"load1": round((load_before + os.getloadavg()[0]) / 2, 2), "wall_s": round(wall, 1),
                   "window": f"{window.interval_ms} ms x3" if window.mode == "time" else f"{window.requests} requests",
                   "own_cores": watch.own_cores, "foreign_cores": watch.foreign_cores,
                   "server": target.label, **{k: round(v, 3) for k, v in server_metrics.summary(d).items()}}
        log(f"{suite.name:14s} {target.label:10s} {protocol:4s} c={concurrency:<2d} {m.throughput:8.2f}/s "
            f"p50 {m.p50_ms:8.1f} ms p99 {m.p99_ms:8.1f} ms ({wall:.0f} s, others {watch.foreign_cores:.2f} cores)")
        if record:
            self.results.add_point(m, csv_path.read_text())
        return m

    def warm_up(self, target: Target, suite: Suite, protocol: str) -> None:
        """A few discarded requests per (server, input kind, protocol): first-call costs stay out of the figures."""
        key = (f"{target.label}:{id(target.srv)}", f"{suite.model}:{suite.inputs}:{protocol}")
        if key in self._warm:
            return
        self._warm.add(key)
        # generation-bound suites: one request (the server's first-call costs are paid once per model anyway)
        c = 1 if suite.slow else min(4, max(suite.concurrency))
        n = 1 if suite.slow else 8 * c
        csv_path = self.work / "warmup.csv"
        with contextlib.suppress(PerfError):
            self.pa.measure(suite.model, target.url(protocol), protocol, self.data[suite.inputs], c, csv_path,
                            Window(mode="requests", requests=n))

    # -- phases ----------------------------------------------------------------------------------------------------

    def sweep(self, target: Target, names: Sequence[str], protocols: Sequence[str] | None = None,
              concurrency: Sequence[int] | None = None) -> list[Measurement]:
        out = []
        for name in names:
            s = self.suite(name)
            for protocol in protocols or s.protocols:
                for c in concurrency or s.concurrency:
                    try:
                        out.append(self.measure(target, s, protocol, c))
                    except PerfError as e:
                        log(f"FAILED {name} {protocol} c={c}: {e}")
                        self.results.data.setdefault("failures", []).append(
                            {"suite": name, "protocol": protocol, "concurrency": c, "error": str(e)[-2000:],
                             "when": _now()})
                        self.results.save()
        return out

    def interleaved(self, sides: Sequence[tuple[Target, Suite]], protocol: str, concurrency: int, rounds: int,
                    window: Window | None = None) -> list[list[Measurement]]:
        """Measure every side once per round, alternating the order each round; per side its measurements."""
        runs: list[list[Measurement]] = [[] for _ in sides]
        for r in range(rounds):
            order = list(range(len(sides)))
            if r % 2:
                order.reverse()
            for i in order:
                target, suite = sides[i]
                runs[i].append(self.measure(target, suite, protocol, concurrency, record=False, window=window,
                                            tag=f"-r{r}"))
        return runs

    def overhead(self, target: Target, concurrency: Sequence[int] = (1, 8), rounds: int = 2,
                 protocol: str = "grpc") -> dict:
        """protector vs bare mllm on the same benign-image requests, interleaved, same server."""
        mllm, prot = self.suite("mllm"), self.suite("benign_image")
        rows = []
        for c in concurrency:
            a, b = self.interleaved([(target, mllm), (target, prot)], protocol, c, rounds)
            rows.append(_pair_row(c, a, b, "mllm", "protector"))
        result = {"protocol": protocol, "rounds": rounds, "max_tokens": self.max_tokens, "rows": rows}
        self.results.add_comparison("overhead", result)
        return result

    def batching(self, concurrency: Sequence[int] = (16,), rounds: int = 3, protocol: str = "grpc") -> dict:
        """harm_detector with dynamic batching (the repository) vs without (a copy, dynamic_batching removed from
        harm_tokenizer and harm_classifier, max_batch_size kept); two servers up together, interleaved."""
        spec = "harm_tokenizer.dynamic_batching=off,harm_classifier.dynamic_batching=off"
        rows = self._ab(spec, "harm_detector", concurrency, rounds, protocol, DETECTOR_MODELS,
                        labels=("batching_on", "batching_off"))
        result = {"protocol": protocol, "rounds": rounds, "variant": spec, "rows": rows}
        self.results.add_comparison("batching", result)
        return result

    def bls(self, main: Target | None = None, concurrency: Sequence[int] = (8,), rounds: int = 2,
            protocol: str = "grpc") -> dict:
        """protector on benign images with its MLLM sub-calls concurrent (the repository: asyncio.gather) vs
        serialised (a copy whose BlsCalls.generate holds one lock); bare mllm on the main server as the reference."""
        spec = "protector.bls=serial"
        prot, mllm = self.suite("benign_image"), self.suite("mllm")
        rows = []
        with self._variant_server(spec, ALL_MODELS) as serial, contextlib.ExitStack() as stack:
            if main is None:
                main = Target("repository", stack.enter_context(server(REPOSITORY, ALL_MODELS, "repository")))
            for c in concurrency:
                a, b, ref = self.interleaved([(main, prot), (serial, prot), (main, mllm)], protocol, c, rounds)
                row = _pair_row(c, a, b, "concurrent", "serial")
                row["mllm"] = _summary(ref)
                rows.append(row)
        result = {"protocol": protocol, "rounds": rounds, "variant": spec, "rows": rows}
        self.results.add_comparison("bls", result)
        return result

    def ab(self, spec: str, suite: str, concurrency: Sequence[int], rounds: int, protocol: str, models: Sequence[str],
           name: str | None = None, baseline: str = "") -> dict:
        """Any variant (benchmarks.perf.variants edit syntax) against the repository (or against the variant
        `baseline`), interleaved; stored as comparison `name` (default ab:<spec>)."""
        rows = self._ab(spec, suite, concurrency, rounds, protocol, models, labels=("before", "after"),
                        baseline=baseline)
        result = {"protocol": protocol, "rounds": rounds, "variant": spec, "baseline": baseline or "repository",
                  "suite": suite, "rows": rows, "name": name or spec}
        self.results.add_comparison(f"ab:{suite}:{name or spec}", result)
        return result

    def _ab(self, spec: str, suite_name: str, concurrency: Sequence[int], rounds: int, protocol: str,
            models: Sequence[str], labels: tuple[str, str], baseline: str = "") -> list[dict]:
        s = self.suite(suite_name)
        rows = []
        with contextlib.ExitStack() as stack:
            if baseline:
                base = stack.enter_context(self._variant_server(baseline, models, "baseline"))
            else:
                base = Target("repository", stack.enter_context(server(REPOSITORY, models, "repository")))
            var = stack.enter_context(self._variant_server(spec, models))
            for c in concurrency:
                a, b = self.interleaved([(base, s), (var, s)], protocol, c, rounds)
                rows.append(_pair_row(c, a, b, *labels))
        return rows

    @contextlib.contextmanager
    def _variant_server(self, spec: str, models: Sequence[str], label: str = "variant") -> Iterator[Target]:
        with tempfile.TemporaryDirectory(prefix=f"perf-{label}-") as tmp:
            repo = make_variant(Path(tmp), spec)
            log(f"{label} repository {repo}: {spec}")
            with server(repo, models, label) as srv:
                yield Target(label, srv)


def _summary(ms: Sequence[Measurement]) -> dict:
    """Median over rounds of each figure, the rounds themselves, and the load they ran under."""
    def med(f: Callable[[Measurement], float]) -> float:
        return round(statistics.median(f(m) for m in ms), 3)

    out = {
        "throughput": med(lambda m: m.throughput), "p50_ms": med(lambda m: m.p50_ms), "p99_ms": med(lambda m: m.p99_ms),
        "rounds": [{"throughput": round(m.throughput, 3), "p50_ms": round(m.p50_ms, 2), "p99_ms": round(m.p99_ms, 2),
                    "load1": m.extra.get("load1")} for m in ms],
        "load1": med(lambda m: m.extra.get("load1", 0.0)),
    }
    foreign = [m.extra["foreign_cores"] for m in ms if "foreign_cores" in m.extra]
    if foreign:
        out["foreign_cores"] = round(statistics.median(foreign), 2)
    for key in ("flagged_fraction", "stage_score_ms", "stage_generate_ms", "harm_classifier_avg_batch",
                "harm_tokenizer_avg_batch", "mllm_avg_batch", "protector_avg_batch"):
        vals = [m.extra[key] for m in ms if key in m.extra]
        if vals:
            out[key] = round(statistics.median(vals), 3)
    return out


def _pair_row(concurrency: int, a: Sequence[Measurement], b: Sequence[Measurement], la: str, lb: str) -> dict:
    sa, sb = _summary(a), _summary(b)

    def pct(x: float, y: float) -> float | None:
        return round(100.0 * (y - x) / x, 2) if x else None

    return {
        "concurrency": concurrency, la: sa, lb: sb, "labels": [la, lb],
        "p50_change_pct": pct(sa["p50_ms"], sb["p50_ms"]),
        "p99_change_pct": pct(sa["p99_ms"], sb["p99_ms"]),
        "throughput_ratio": round(sb["throughput"] / sa["throughput"], 3) if sa["throughput"] else None,
        # per round (same round = nearest in time), the median of the paired changes
        "p50_change_pct_paired": _paired(a, b, lambda m: m.p50_ms),
        "throughput_ratio_paired": _paired_ratio(a, b),
    }


def _paired(a: Sequence[Measurement], b: Sequence[Measurement], f: Callable[[Measurement], float]) -> float | None:
    changes = [100.0 * (f(y) - f(x)) / f(x) for x, y in zip(a, b, strict=False) if f(x)]
    return round(statistics.median(changes), 2) if changes else None


def _paired_ratio(a: Sequence[Measurement], b: Sequence[Measurement]) -> float | None:
    ratios = [y.throughput / x.throughput for x, y in zip(a, b, strict=False) if x.throughput]
    return round(statistics.median(ratios), 3) if ratios else None


# ---- command line ------------------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.replace(" ", "").split(",") if x]


def _names(text: str) -> list[str]:
    names = [x for x in text.replace(" ", "").split(",") if x]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise SystemExit(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sweep", "overhead", "batching", "bls", "ab", "report"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--suites", default="", help=f"comma-separated, of: {', '.join(SUITES)}")
    parser.add_argument("--suite", default="guard_benign", help="ab: the suite to compare on")
    parser.add_argument("--protocols", default="", help="grpc,http (default: each suite's own)")
    parser.add_argument("--protocol", default="grpc", help="comparisons: the protocol")
    parser.add_argument("--concurrency", default="", help="comma-separated (default: each suite's own)")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--variant", default="", help="ab: edits, e.g. harm_classifier.instances=2")
    parser.add_argument("--baseline", default="", help="ab: edits for the baseline side (default: the repository)")
    parser.add_argument("--name", default="", help="ab: the comparison's name in results.json / report.md")
    parser.add_argument("--models", default="", help=f"ab: model set, one of {', '.join(MODEL_SETS)}")
    parser.add_argument("--scale", type=float, default=1.0, help="measurement windows x this factor")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args(argv)
    sigterm_exits()

    results = Results(args.out)
    if args.command == "report":
        print(results.write_report().read_text())
        return 0
    results.begin_run(" ".join(["run_suite", *(argv if argv is not None else sys.argv[1:])]))
    runner = Runner(results, scale=args.scale, max_tokens=args.max_tokens)
    conc = _ints(args.concurrency) if args.concurrency else None
    try:
        if args.command == "sweep":
            names = _names(args.suites) if args.suites else list(SUITES)
            protocols = [p for p in args.protocols.split(",") if p] or None
            models = ALL_MODELS if any(SUITES[n].model != "harm_detector" for n in names) else DETECTOR_MODELS
            with server(REPOSITORY, models, "repository") as srv:
                runner.sweep(Target("repository", srv), names, protocols, conc)
        elif args.command == "overhead":
            with server(REPOSITORY, ALL_MODELS, "repository") as srv:
                runner.overhead(Target("repository", srv), conc or (1, 8), args.rounds or 2, args.protocol)
        elif args.command == "batching":
            runner.batching(conc or (16,), args.rounds or 3, args.protocol)
        elif args.command == "bls":
            runner.bls(None, conc or (8,), args.rounds or 2, args.protocol)
        elif args.command == "ab":
            if not args.variant:
                raise SystemExit("ab needs --variant")
            suite = SUITES[args.suite]
            default_set = "detector" if suite.model == "harm_detector" else "guard" if not suite.slow else "all"
            models = MODEL_SETS[args.models or default_set]
            runner.ab(args.variant, args.suite, conc or (16,), args.rounds or 3, args.protocol, models,
                      args.name or None, args.baseline)
    finally:
        results.end_run()
        report = results.write_report()
        log(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
