"""Run the perf_analyzer 2.51 binary (from the tritonclient==2.51.0 wheel in `.venv-perf`) and read its CSV.

- `find_perf_analyzer()` locates the binary; `library_dir()` makes the two libraries it needs loadable: the
  nvidia-pytriton wheel carries `libb64` and `libcudart` under hashed names, so symlinks with the sonames the binary
  asks for (`libb64.so.0d`, `libcudart.so.12`) are laid out in `.venv-perf/pa-libs/` (idempotent).
- `Measurement` is one row of the `-f` CSV (one concurrency): throughput and client-side latencies (microseconds in
  the CSV, milliseconds here), plus the server-side split perf_analyzer reads from Triton's statistics.
- `PerfAnalyzer.measure(...)` runs one concurrency point and returns its `Measurement` (or raises `PerfError` with
  the tail of perf_analyzer's output: it exits non-zero on any failed request).
"""

from __future__ import annotations

import csv
import glob
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PERF_VENV = ROOT / ".venv-perf"
# soname the binary asks for -> glob of the file the nvidia-pytriton wheel ships
NEEDED_LIBS = {"libb64.so.0d": "libb64-*.so.0d*", "libcudart.so.12": "libcudart-*.so.12*"}


class PerfError(RuntimeError):
    """perf_analyzer failed (a failed request, no stable measurement, a bad argument); the message has its output."""


def find_perf_analyzer(venv: Path = PERF_VENV) -> Path:
    candidates = [venv / "bin" / "perf_analyzer", Path(shutil.which("perf_analyzer") or "")]
    for c in candidates:
        if c.name and c.is_file() and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError(
        f"perf_analyzer not found in {venv}/bin: run `make setup` (or: python3.11 -m venv .venv-perf && "
        ".venv-perf/bin/pip install --no-deps tritonclient==2.51.0)"
    )


def pytriton_libs() -> Path:
    from mllm_protector.server import pytriton_libs_dir

    return pytriton_libs_dir()


def library_dir(target: Path = PERF_VENV / "pa-libs", source: Path | None = None) -> Path:
    """A folder of symlinks `libb64.so.0d` / `libcudart.so.12` -> the wheel's hashed files (made once)."""
    source = source or pytriton_libs()
    target.mkdir(parents=True, exist_ok=True)
    for soname, pattern in NEEDED_LIBS.items():
        link = target / soname
        if link.exists():
            continue
        found = sorted(glob.glob(str(source / pattern)))
        if not found:
            raise FileNotFoundError(f"{pattern} not in {source} (needed by perf_analyzer as {soname})")
        tmp = link.with_name(soname + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(found[0])
        tmp.replace(link)
    return target


def perf_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    dirs = [str(library_dir()), *[p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(dict.fromkeys(dirs))
    return env


# ---- CSV ------------------------------------------------------------------------------------------------------

_US = 1e-3  # perf_analyzer's CSV is in microseconds


@dataclass
class Measurement:
    """One concurrency point (one row of perf_analyzer's `-f` CSV). Latencies in milliseconds."""

    concurrency: int
    throughput: float  # inferences/s
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    server_queue_ms: float = 0.0
    server_compute_ms: float = 0.0  # input + infer + output
    client_overhead_ms: float = 0.0  # client send + recv
    # filled by the runner, not the CSV
    suite: str = ""
    model: str = ""
    protocol: str = ""
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        d.update({f"x_{k}": v for k, v in extra.items()})
        return d


def _num(row: dict[str, str], key: str) -> float:
    value = (row.get(key) or "").strip()
    return float(value) if value else 0.0


def parse_csv(text: str) -> list[Measurement]:
    """Rows of perf_analyzer's `-f` CSV (concurrency mode) as `Measurement`s; blank and trailing lines are ignored.

    Only the columns that exist are read: the server-side ones are 0 where the CSV lacks them."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = reader.fieldnames or []
    if "Concurrency" not in header or "Inferences/Second" not in header:
        raise ValueError(f"not a perf_analyzer concurrency CSV (columns: {header})")
    out = []
    for row in reader:
        if not (row.get("Concurrency") or "").strip():
            continue
        compute = sum(_num(row, k) for k in ("Server Compute Input", "Server Compute Infer", "Server Compute Output"))
        out.append(
            Measurement(
                concurrency=int(float(row["Concurrency"])),
                throughput=_num(row, "Inferences/Second"),
                p50_ms=_num(row, "p50 latency") * _US,
                p90_ms=_num(row, "p90 latency") * _US,
                p95_ms=_num(row, "p95 latency") * _US,
                p99_ms=_num(row, "p99 latency") * _US,
                # 2.51 writes "Avg latency" only with --verbose-csv; otherwise it is the sum of the breakdown
                avg_ms=(_num(row, "Avg latency")
                        or _num(row, "Client Send") + _num(row, "Network+Server Send/Recv") + _num(row, "Client Recv")
                        + _num(row, "Server Queue") + compute) * _US,
                server_queue_ms=_num(row, "Server Queue") * _US,
                server_compute_ms=compute * _US,
                client_overhead_ms=(_num(row, "Client Send") + _num(row, "Client Recv")) * _US,
            )
        )
    return out


# ---- running it ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """How perf_analyzer measures one point.

    `time` (the default): windows of `interval_ms`; perf_analyzer repeats windows until the last three agree within
    `stability` percent (throughput and average latency), at most `max_trials`, and reports the mean of those three.
    The defaults (stability 1000 %, 3 trials) make that a fixed three windows: on a shared 2-core machine a strict
    check fails often and costs minutes; the suites repeat the points that matter instead (see run_suite).
    `requests`: one measurement of exactly `requests` requests (`--request-count`), for the slow suites where a
    time window would hold too few requests."""

    mode: str = "time"
    interval_ms: int = 2000
    requests: int = 16
    stability: int = 1000
    max_trials: int = 3

    def __post_init__(self) -> None:
        if self.mode not in ("time", "requests"):
            raise ValueError(f"window mode must be 'time' or 'requests', got {self.mode!r}")

    def args(self) -> list[str]:
        if self.mode == "requests":
            return [f"--request-count={self.requests}"]
        return [
            "--measurement-mode=time_windows",
            f"--measurement-interval={self.interval_ms}",
            f"--stability-percentage={self.stability}",
            f"--max-trials={self.max_trials}",
        ]


def command(
    binary: Path,
    model: str,
    url: str,
    protocol: str,
    input_data: Path,
    concurrency: int,
    csv_path: Path,
    window: Window,
    extra: Sequence[str] = (),
) -> list[str]:
    """perf_analyzer's argv for one concurrency point (`-f csv_path`)."""
    if protocol not in ("grpc", "http"):
        raise ValueError(f"protocol must be grpc or http, got {protocol!r}")
    return [
        str(binary),
        "-m", model,
        "-u", url,
        "-i", protocol,
        f"--input-data={input_data}",
        f"--concurrency-range={concurrency}:{concurrency}",
        "-f", str(csv_path),
        *window.args(),
        *extra,
    ]


class PerfAnalyzer:
    def __init__(self, binary: Path | None = None, timeout: float = 300.0, verbose: bool = False) -> None:
        self.binary = binary or find_perf_analyzer()
        self.env = perf_env()
        self.timeout = timeout
        self.verbose = verbose

    def measure(
        self,
        model: str,
        url: str,
        protocol: str,
        input_data: Path,
        concurrency: int,
        csv_path: Path,
        window: Window = Window(),
        extra: Sequence[str] = (),
    ) -> Measurement:
        argv = command(self.binary, model, url, protocol, input_data, concurrency, csv_path, window, extra)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        csv_path.unlink(missing_ok=True)
        try:
            proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            raise PerfError(f"perf_analyzer ran past {self.timeout:g} s: {' '.join(argv)}") from e
        output = (proc.stdout or "") + (proc.stderr or "")
        if self.verbose:
            print(output, file=sys.stderr)
        if proc.returncode != 0 or not csv_path.exists():
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise PerfError(f"perf_analyzer exited {proc.returncode} ({model}, {protocol}, c={concurrency}):\n{tail}")
        rows = parse_csv(csv_path.read_text())
        if len(rows) != 1:
            raise PerfError(f"{csv_path}: expected one row, got {len(rows)}")
        return rows[0]
