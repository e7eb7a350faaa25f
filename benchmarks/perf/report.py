"""`report.md` and the PNG plots from `results.json` (written by run_suite / bench / soak).

Plots are drawn with PIL (matplotlib is not a dependency of this project): per suite, latency (p50 solid, p99
dashed) against throughput, one colour per protocol, each point labelled with its concurrency.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

# Targets of issue 5
OVERHEAD_P50_C1_MAX = 5.0  # % of the bare MLLM's p50 at concurrency 1
OVERHEAD_P50_C8_MAX = 10.0  # ... at concurrency 8
GUARD_ONLY_MIN_RPS = 200.0  # at concurrency 16
BATCHING_MIN_RATIO = 3.0  # harm_detector throughput, batching on / off, at concurrency 16

COLORS = {"grpc": (43, 123, 185), "http": (214, 69, 65)}
INK, GRID = (30, 30, 30), (225, 225, 225)


# ---- lookups -----------------------------------------------------------------------------------------------------


def points_of(data: Mapping, suite: str, protocol: str | None = None) -> list[dict]:
    pts = [p for p in data.get("points", []) if p["suite"] == suite and (protocol is None or p["protocol"] == protocol)]
    return sorted(pts, key=lambda p: (p["protocol"], p["concurrency"]))


def point(data: Mapping, suite: str, protocol: str, concurrency: int) -> dict | None:
    for p in data.get("points", []):
        if (p["suite"], p["protocol"], p["concurrency"]) == (suite, protocol, concurrency):
            return p
    return None


def _row(comparison: Mapping | None, concurrency: int) -> dict | None:
    for r in (comparison or {}).get("rows", []):
        if r["concurrency"] == concurrency:
            return r
    return None


def _f(x: Any, digits: int = 1, suffix: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}{suffix}"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**not met**")


def _load(x: Any, foreign: Any = None) -> str:
    """The 1-minute load average, and the cores other processes used (when measured)."""
    text = "-" if x is None else f"{x:.1f}"
    return text if foreign is None else f"{text} / {foreign:.2f}"


# ---- headline --------------------------------------------------------------------------------------------------


def headline_rows(data: Mapping) -> list[list[str]]:
    """| figure | target | measured | verdict | load (1-min avg) | how |"""
    rows: list[list[str]] = []
    comps = data.get("comparisons", {})
    over = comps.get("overhead")
    for c, limit in ((1, OVERHEAD_P50_C1_MAX), (8, OVERHEAD_P50_C8_MAX)):
        r = _row(over, c)
        if r is None:
            rows.append([f"guard overhead, benign images, c={c} (p50 / p99)", f"<= {limit:g} % (p50)", "not measured",
                         "-", "-", "`run_suite overhead`"])
            continue
        a, b = r["mllm"], r["protector"]
        measured = (f"{_f(r['p50_change_pct'], 1, ' %')} / {_f(r['p99_change_pct'], 1, ' %')} "
                    f"(mllm {_f(a['p50_ms'], 0)} / {_f(a['p99_ms'], 0)} ms, protector {_f(b['p50_ms'], 0)} / "
                    f"{_f(b['p99_ms'], 0)} ms)")
        ok = None if r["p50_change_pct"] is None else r["p50_change_pct"] <= limit
        how = f"median of {over['rounds']} interleaved rounds, max_tokens {over.get('max_tokens')}"
        if b.get("stage_score_ms") is not None and b.get("stage_generate_ms"):
            how += (f"; server side: score stage {_f(b['stage_score_ms'], 0)} ms per batch = "
                    f"{_f(100 * b['stage_score_ms'] / b['stage_generate_ms'], 1, ' %')} of the mllm call")
        if b.get("mllm_avg_batch") is not None and a.get("mllm_avg_batch") is not None:
            how += f"; mllm batch {_f(a['mllm_avg_batch'], 1)} bare vs {_f(b['mllm_avg_batch'], 1)} via protector"
        rows.append([f"guard overhead, benign images, c={c} (p50 / p99)", f"<= {limit:g} % (p50)", measured,
                     _verdict(ok), _load(b.get("load1"), b.get("foreign_cores")), how])
    for protocol in ("grpc", "http"):
        p = point(data, "guard_benign", protocol, 16)
        if p is None:
            continue
        flagged = p.get("x_flagged_fraction")
        note = f"{_f(100 * flagged, 0, ' %')} of the benign answers flagged" if flagged is not None else ""
        rows.append([f"guard-only throughput, c=16, {protocol}", f">= {GUARD_ONLY_MIN_RPS:g} req/s",
                     f"{_f(p['throughput'], 1)} req/s (p50 {_f(p['p50_ms'], 0)} ms, p99 {_f(p['p99_ms'], 0)} ms)",
                     _verdict(p["throughput"] >= GUARD_ONLY_MIN_RPS), _load(p.get("x_load1"), p.get("x_foreign_cores")),
                     "guard_benign sweep" + (f"; {note}" if note else "")])
    bat = comps.get("batching")
    for r in (bat or {}).get("rows", []):
        on, off = r["batching_on"], r["batching_off"]
        ratio = on["throughput"] / off["throughput"] if off["throughput"] else None
        rows.append([f"harm_detector batching on / off, c={r['concurrency']}", f">= {BATCHING_MIN_RATIO:g}x",
                     f"{_f(ratio, 2, 'x')} ({_f(on['throughput'], 1)} vs {_f(off['throughput'], 1)} req/s)",
                     _verdict(None if ratio is None else ratio >= BATCHING_MIN_RATIO),
                     _load(on.get("load1"), on.get("foreign_cores")),
                     f"median of {bat['rounds']} interleaved rounds, two servers"])
    bls = comps.get("bls")
    for r in (bls or {}).get("rows", []):
        con, ser, ref = r["concurrent"], r["serial"], r.get("mllm", {})
        speedup = con["throughput"] / ser["throughput"] if ser["throughput"] else None
        rows.append([f"BLS MLLM sub-calls concurrent / serialised, c={r['concurrency']}", "(no target)",
                     f"{_f(speedup, 2, 'x')} throughput ({_f(con['throughput'], 2)} vs {_f(ser['throughput'], 2)} "
                     f"req/s; bare mllm {_f(ref.get('throughput'), 2)} req/s; mllm batch "
                     f"{_f(con.get('mllm_avg_batch'), 1)} vs {_f(ser.get('mllm_avg_batch'), 1)})", "-",
                     _load(con.get("load1"), con.get("foreign_cores")),
                     f"median of {bls['rounds']} interleaved rounds"])
    soak = data.get("soak")
    if soak:
        rows.append([f"soak, c={soak.get('concurrency')}, {_f(soak.get('duration_s', 0) / 60, 1)} min",
                     "0 failed requests", f"{soak.get('failed')} failed of {soak.get('requests')} "
                     f"(RSS {_f(soak.get('rss_growth_mib'), 1, ' MiB')} growth after warm-up)",
                     _verdict(soak.get("failed") == 0 and soak.get("requests", 0) > 0),
                     _load(soak.get("load1_mean")), "`benchmarks/soak.py`"])
    return rows


def headline_table(data: Mapping) -> str:
    rows = headline_rows(data)
    head = "| figure | target | measured | verdict | load / others | how |\n|---|---|---|---|---|---|"
    return "\n".join([head, *("| " + " | ".join(r) + " |" for r in rows)])


# ---- sweeps -------------------------------------------------------------------------------------------------------


def sweep_table(data: Mapping, suites: Iterable[str]) -> str:
    head = ("| suite | protocol | c | req/s | p50 ms | p99 ms | server queue ms | server compute ms | flagged "
            "| load / others |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for suite in suites:
        for p in points_of(data, suite):
            flagged = p.get("x_flagged_fraction")
            lines.append(
                f"| {suite} | {p['protocol']} | {p['concurrency']} | {_f(p['throughput'], 2)} | {_f(p['p50_ms'])} | "
                f"{_f(p['p99_ms'])} | {_f(p['server_queue_ms'])} | {_f(p['server_compute_ms'])} | "
                f"{'-' if flagged is None else _f(100 * flagged, 0, ' %')} | "
                f"{_load(p.get('x_load1'), p.get('x_foreign_cores'))} |"
            )
    return "\n".join(lines)


def comparison_table(data: Mapping, prefix: str = "ab:") -> str:
    comps = {k: v for k, v in data.get("comparisons", {}).items() if k.startswith(prefix) or prefix == "*"}
    if not comps:
        return ""
    lines = ["| change (variant) | suite | c | before req/s | after req/s | ratio | before p50 / p99 ms | "
             "after p50 / p99 ms | batch sizes before -> after | load / others |", "|---" * 10 + "|"]
    for name, comp in comps.items():
        label = comp.get("name") or (name[len(prefix):] if name.startswith(prefix) else name)
        if comp.get("baseline") and comp["baseline"] != "repository":
            label += f" (baseline: {comp['baseline']})"
        for r in comp.get("rows", []):
            a, b = (r[r["labels"][0]], r[r["labels"][1]])
            lines.append(
                f"| `{label}` | {comp.get('suite', '')} | {r['concurrency']} | {_f(a['throughput'], 2)} | "
                f"{_f(b['throughput'], 2)} | {_f(r['throughput_ratio'], 2, 'x')} | {_f(a['p50_ms'], 0)} / "
                f"{_f(a['p99_ms'], 0)} | {_f(b['p50_ms'], 0)} / {_f(b['p99_ms'], 0)} | {_batches(a, b)} | "
                f"{_load(a.get('load1'), a.get('foreign_cores'))} |"
            )
    return "\n".join(lines)


def _batches(a: Mapping, b: Mapping) -> str:
    """The server's average batch sizes on both sides (mllm where it ran, else the classifier)."""
    for key, name in (("mllm_avg_batch", "mllm"), ("harm_classifier_avg_batch", "classifier")):
        if a.get(key) is not None and b.get(key) is not None:
            return f"{name} {_f(a[key], 1)} -> {_f(b[key], 1)}"
    return "-"


# ---- plots ----------------------------------------------------------------------------------------------------------


def _font(size: int):
    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _dashed(draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], color, width: int = 2,
            dash: float = 7.0) -> None:
    length = math.dist(a, b)
    if length == 0:
        return
    steps = max(1, int(length // dash))
    for i in range(0, steps, 2):
        t0, t1 = i / steps, min(1.0, (i + 1) / steps)
        draw.line([(a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                   (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)], fill=color, width=width)


def latency_plot(title: str, pts: Sequence[Mapping], path: Path) -> Path:
    """Latency (ms, p50 solid / p99 dashed) against throughput (req/s), one colour per protocol."""
    width, height, left, right, top, bottom = 760, 460, 80, 30, 60, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small, bold = _font(13), _font(11), _font(15)
    draw.text((left, 12), title, fill=INK, font=bold)
    xmax = _nice_max(max((p["throughput"] for p in pts), default=1.0) * 1.08)
    ymax = _nice_max(max((p["p99_ms"] for p in pts), default=1.0) * 1.05)
    pw, ph = width - left - right, height - top - bottom

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + pw * x / xmax, top + ph * (1 - y / ymax)

    for i in range(6):
        gx, gy = left + pw * i / 5, top + ph * i / 5
        draw.line([(gx, top), (gx, top + ph)], fill=GRID)
        draw.line([(left, gy), (left + pw, gy)], fill=GRID)
        draw.text((gx - 12, top + ph + 6), _tick(xmax * i / 5), fill=INK, font=small)
        draw.text((8, gy - 7), _tick(ymax * (5 - i) / 5), fill=INK, font=small)
    draw.rectangle((left, top, left + pw, top + ph), outline=INK)
    draw.text((left + pw / 2 - 60, height - 24), "throughput (req/s)", fill=INK, font=font)
    draw.text((8, top - 22), "latency (ms)", fill=INK, font=font)
    legend_x = left + 10
    for protocol in ("grpc", "http"):
        series = sorted((p for p in pts if p["protocol"] == protocol), key=lambda p: p["concurrency"])
        if not series:
            continue
        color = COLORS.get(protocol, INK)
        for key, dashed in (("p50_ms", False), ("p99_ms", True)):
            coords = [xy(p["throughput"], p[key]) for p in series]
            for a, b in zip(coords, coords[1:], strict=False):
                (_dashed(draw, a, b, color) if dashed else draw.line([a, b], fill=color, width=2))
            for p, (cx, cy) in zip(series, coords, strict=True):
                r = 3
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color if not dashed else "white", outline=color)
                if not dashed:
                    draw.text((cx + 4, cy - 14), f"c{p['concurrency']}", fill=color, font=small)
        draw.line([(legend_x, top + 12), (legend_x + 24, top + 12)], fill=color, width=2)
        draw.text((legend_x + 28, top + 5), f"{protocol} p50", fill=INK, font=small)
        _dashed(draw, (legend_x + 90, top + 12), (legend_x + 114, top + 12), color)
        draw.text((legend_x + 118, top + 5), f"{protocol} p99", fill=INK, font=small)
        legend_x += 190
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _tick(v: float) -> str:
    if v >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.3g}"


# ---- the report ------------------------------------------------------------------------------------------------


def _conditions(data: Mapping) -> str:
    runs = data.get("runs", [])
    lines = []
    for r in runs[-12:]:
        lines.append(f"- `{r.get('command')}`: {r.get('started')} -> {r.get('finished', '?')}, load average "
                     f"{r.get('load_start')} -> {r.get('load_end', '?')}, commit {r.get('commit') or '?'}, "
                     f"detector ONNX {r.get('detector_onnx', {}).get('mtime', '?')}")
    return "\n".join(lines)


def _short(suite: str, title: str, limit: int = 80) -> str:
    text = f"{suite}: {title}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def suite_titles() -> dict[str, str]:
    from benchmarks.perf.suites import SUITES

    return {name: s.title for name, s in SUITES.items()}


def write(data: Mapping, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    titles = suite_titles()
    plots = []
    for suite, title in titles.items():
        pts = points_of(data, suite)
        if pts:
            plots.append((suite, latency_plot(_short(suite, title), pts, out_dir / f"{suite}.png")))
    findings = out_dir / "findings.md"
    parts = [
        "# Load test report (perf_analyzer 2.51, CPU)",
        "",
        "Generated by `benchmarks/perf/run_suite.py` / `benchmarks/bench.py` from `results.json`; perf_analyzer's own "
        "CSV (`-f`) per suite and protocol lies beside it (`<suite>_<protocol>.csv`, latencies in microseconds). "
        "Load / others = the machine's 1-minute load average during the measurement, and the CPU cores that "
        "processes other than this benchmark (its servers, their stubs, perf_analyzer) used meanwhile. The machine has "
        "2 cores; a saturated benchmark alone gives a load of about 2-3, so `others` is the contention figure: "
        "near 0 = quiet, 1 = half the machine was taken by someone else.",
        "",
        "## Headline figures",
        "",
        headline_table(data),
        "",
    ]
    if findings.exists():  # hand-written reading of the figures, kept beside the generated report
        parts += [findings.read_text().strip(), ""]
    parts += [
        "## Sweeps",
        "",
        sweep_table(data, titles),
        "",
    ]
    for suite, path in plots:
        parts += [f"![{suite}]({path.name})", ""]
    table = comparison_table(data)
    if table:
        parts += ["## Configuration experiments (tmp copies of the repository, interleaved with the original)", "",
                  table, ""]
    failures = data.get("failures", [])
    if failures:
        parts += ["## perf_analyzer failures", ""]
        parts += [f"- {f['when']} {f['suite']} {f['protocol']} c={f['concurrency']}: "
                  f"`{f['error'].splitlines()[-1] if f['error'] else ''}`" for f in failures[-10:]]
        parts.append("")
    parts += ["## Runs", "", _conditions(data), ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(parts))
    return path


def load(out_dir: Path) -> dict:
    path = Path(out_dir) / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}
