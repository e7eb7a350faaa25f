"""Soak test: a bounded run of steady load on a tritonserver this script starts on 127.0.0.1, counting every failed
request and watching the memory (RSS) of the server and its python-backend stub processes.

    python benchmarks/soak.py                       # 5 minutes at concurrency 16, guard-only with 1% harmful answers
    python benchmarks/soak.py --mix guard_benign=12,guard_harmful=1,benign_text=1,benign_image=1,typographic=1
    python benchmarks/soak.py --duration-s 60 --concurrency 4 --mix guard_benign=1

`--concurrency` asyncio workers share one gRPC client (`mllm_protector.client.AsyncProtectorClient`); each sends its
next request as soon as the last one returned, cycling through the mix (`kind=weight`, kinds of
benchmarks/perf/inputs.py: guard_benign, guard_harmful, benign_text, benign_image, typographic). A request fails when
it raises (server error, connection error, or the per-request `--timeout-s`); the answer must also be a string with
a harm score in [0, 1]. RSS is sampled every `--sample-s` seconds; growth is counted from the first sample after
`--warmup-s` (model loading and first-call allocations excluded) to the last one.

Prints a summary and writes `benchmarks/results/perf/soak.json`; the figures go into results.json / report.md.
Exit status 0 when no request failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.perf import inputs as perf_inputs  # noqa: E402
from benchmarks.perf import metrics as server_metrics  # noqa: E402
from benchmarks.perf.run_suite import REPOSITORY, RESULTS, Results, log, server, sigterm_exits  # noqa: E402
from benchmarks.perf.suites import ALL_MODELS  # noqa: E402

# Guard-only by default: on 2 CPU cores the stand-in MLLM cannot generate for 16 concurrent clients within the
# per-request timeout, which would measure capacity (make bench), not reliability. Add generating kinds with --mix.
DEFAULT_MIX = "guard_benign=99,guard_harmful=1"
KINDS = ("guard_benign", "guard_harmful", "benign_text", "benign_image", "typographic")
MAX_DURATION_S = 3600
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ---- processes ---------------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (the python-backend stubs of a tritonserver), from /proc."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) > 1:
            parent_of[int(entry)] = int(rest[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out += kids
        frontier += kids
    return sorted(out)


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def process_name(pid: int) -> str:
    """A short name: the model of a python stub (its model.py path), else the executable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return str(pid)
    for a in argv:
        if a.endswith("/1/model.py"):
            model = Path(a).parent.parent.name
            instance = next((x for x in argv if x.startswith(f"{model}_")), "")
            return instance or model
    return Path(argv[0]).name if argv else str(pid)


def sample_rss(server_pid: int) -> dict[str, int]:
    """{process name (pid): RSS bytes} for the server and each descendant."""
    out = {}
    for pid in [server_pid, *children(server_pid)]:
        rss = rss_bytes(pid)
        if rss is not None:
            out[f"{process_name(pid)} ({pid})"] = rss
    return out


# ---- load --------------------------------------------------------------------------------------------------------


def parse_mix(spec: str) -> list[str]:
    """`"a=3,b=1"` -> a deterministic, interleaved schedule of kinds (a, a, b, a ... by weight)."""
    weights: dict[str, int] = {}
    for item in (i.strip() for i in spec.split(",")):
        if not item:
            continue
        kind, _, w = item.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} in the mix; known: {', '.join(KINDS)}")
        weight = int(w) if w.strip() else 1
        if weight < 0:
            raise ValueError(f"negative weight for {kind}")
        if weight:
            weights[kind] = weight
    if not weights:
        raise ValueError("empty mix")
    total = sum(weights.values())
    # smooth weighted round-robin: spreads the rare kinds out instead of bunching them
    current = dict.fromkeys(weights, 0)
    schedule = []
    for _ in range(total):
        for k, w in weights.items():
            current[k] += w
        pick = max(current, key=lambda k: current[k])
        current[pick] -= total
        schedule.append(pick)
    return schedule


@dataclass
class Request:
    kind: str
    prompt: str
    image: bytes | None = None
    response: str | None = None
    max_tokens: int | None = None


def requests_of(kind: str, max_tokens: int) -> list[Request]:
    out = []
    for e in perf_inputs.KINDS[kind](max_tokens):
        image = base64.b64decode(e["image"][0]) if "image" in e else None
        out.append(Request(kind, e["text_input"][0], image, e.get("response", [None])[0],
                           e.get("max_tokens", [None])[0]))
    return out


@dataclass
class Tally:
    ok: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        if error is None:
            self.ok[kind] += 1
            self.latencies.setdefault(kind, []).append(seconds)
        else:
            self.failed[kind] += 1
            if len(self.errors) < 20:
                self.errors.append(f"{kind}: {error}")


async def worker(client, schedule: list[str], pools: dict[str, list[Request]], offset: int, deadline: float,
                 timeout: float, tally: Tally) -> None:
    i = offset
    while time.monotonic() < deadline:
        kind = schedule[i % len(schedule)]
        pool = pools[kind]
        req = pool[(i // len(schedule)) % len(pool)]
        i += 1
        start = time.monotonic()
        error = None
        try:
            answer = await asyncio.wait_for(
                client.ask(req.prompt, image=req.image, response=req.response, max_tokens=req.max_tokens), timeout)
            if not isinstance(answer.text, str) or not 0.0 <= float(answer.harm_score) <= 1.0:
                error = f"malformed answer {answer!r:.200}"
        except asyncio.TimeoutError:
            error = f"no answer within {timeout:g} s"
        except Exception as e:  # every failure counts; the message is kept
            error = f"{type(e).__name__}: {str(e)[:300]}"
        tally.record(kind, time.monotonic() - start, error)


async def run_load(url: str, schedule: list[str], pools: dict[str, list[Request]], concurrency: int, duration: float,
                   timeout: float, server_pid: int, sample_s: float, warmup_s: float) -> dict:
    from mllm_protector.client import AsyncProtectorClient

    tally = Tally()
    samples: list[tuple[float, dict[str, int], float]] = []
    start = time.monotonic()
    deadline = start + duration

    async def sampler() -> None:
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - start, sample_rss(server_pid), os.getloadavg()[0]))
            await asyncio.sleep(min(sample_s, max(0.0, deadline - time.monotonic())) or 0.01)
        samples.append((time.monotonic() - start, sample_rss(server_pid), os.getloadavg()[0]))

    async with AsyncProtectorClient(url, protocol="grpc", timeout=timeout + 5) as client:
        # workers start spread over the schedule, so the mix holds from the first second
        step = max(1, len(schedule) // concurrency)
        tasks = [worker(client, schedule, pools, k * step, deadline, timeout, tally) for k in range(concurrency)]
        await asyncio.gather(sampler(), *tasks)
    elapsed = time.monotonic() - start
    return summarise(tally, samples, elapsed, warmup_s)


def summarise(tally: Tally, samples: list[tuple[float, dict[str, int], float]], elapsed: float,
              warmup_s: float) -> dict:
    after = [s for s in samples if s[0] >= warmup_s] or samples[-1:]
    first, last = (after[0][1], after[-1][1]) if after else ({}, {})
    common = sorted(set(first) & set(last))
    per_process = {name: {"rss_mib_start": round(first[name] / 2**20, 1), "rss_mib_end": round(last[name] / 2**20, 1),
                          "growth_mib": round((last[name] - first[name]) / 2**20, 1)} for name in common}
    lat = {k: {"n": len(v), "p50_ms": round(1000 * statistics.median(v), 1),
               "p99_ms": round(1000 * sorted(v)[min(len(v) - 1, int(0.99 * len(v)))], 1)}
           for k, v in tally.latencies.items() if v}
    requests = sum(tally.ok.values()) + sum(tally.failed.values())
    return {
        "duration_s": round(elapsed, 1), "requests": requests, "ok": sum(tally.ok.values()),
        "failed": sum(tally.failed.values()), "failed_by_kind": dict(tally.failed), "ok_by_kind": dict(tally.ok),
        "errors": tally.errors, "throughput": round(requests / elapsed, 2) if elapsed else 0.0, "latency": lat,
        "rss_growth_mib": round(sum(p["growth_mib"] for p in per_process.values()), 1),
        "rss_total_mib_end": round(sum(last.values()) / 2**20, 1), "processes": per_process,
        "rss_window_s": [round(after[0][0], 1), round(after[-1][0], 1)] if after else [],
        "load1_mean": round(statistics.mean(s[2] for s in samples), 2) if samples else None,
        "load1_max": round(max(s[2] for s in samples), 2) if samples else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=300.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mix", default=DEFAULT_MIX)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--timeout-s", type=float, default=120.0, help="per request")
    parser.add_argument("--warmup-s", type=float, default=30.0, help="RSS growth is counted from here")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0 < args.duration_s <= MAX_DURATION_S:
        parser.error(f"--duration-s must be in (0, {MAX_DURATION_S}]")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be in [1, 256]")
    sigterm_exits()
    random.seed(args.seed)
    schedule = parse_mix(args.mix)
    pools = {kind: requests_of(kind, args.max_tokens) for kind in set(schedule)}
    results = Results(args.out)
    results.begin_run("soak " + " ".join(argv if argv is not None else sys.argv[1:]))
    try:
        with server(REPOSITORY, ALL_MODELS, "soak") as srv:
            before = server_metrics.scrape(srv.metrics_url)
            log(f"soak: {args.duration_s:g} s at concurrency {args.concurrency}, mix {args.mix}")
            summary = asyncio.run(run_load(srv.grpc_url, schedule, pools, args.concurrency, args.duration_s,
                                           args.timeout_s, srv.pid, args.sample_s, args.warmup_s))
            d = server_metrics.delta(before, server_metrics.scrape(srv.metrics_url))
            summary["server_failures"] = {
                model: server_metrics.value(d, "nv_inference_request_failure", model=model) for model in ALL_MODELS}
            summary["server"] = {k: round(v, 3) for k, v in server_metrics.summary(d).items()}
    finally:
        results.end_run()
    summary.update({"concurrency": args.concurrency, "mix": args.mix, "max_tokens": args.max_tokens,
                    "timeout_s": args.timeout_s, "measured": results.data["runs"][-1].get("finished")})
    (args.out / "soak.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    results.data["soak"] = summary
    results.save()
    results.write_report()
    print(json.dumps({k: summary[k] for k in ("duration_s", "requests", "ok", "failed", "failed_by_kind",
                                              "throughput", "rss_growth_mib", "rss_total_mib_end", "load1_mean",
                                              "latency", "errors", "server_failures")}, indent=1))
    return 0 if summary["failed"] == 0 and summary["requests"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
