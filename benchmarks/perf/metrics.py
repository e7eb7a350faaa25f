"""Triton's Prometheus metrics around a measurement: what the server did (per-model request counts and times, the
protector's guard outcomes and per-stage latency), as differences between two scrapes."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Mapping

Sample = tuple[str, tuple[tuple[str, str], ...]]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[Sample, float]:
    """Prometheus text format -> {(name, sorted labels): value}; comments and unparsable values are skipped."""
    out: dict[Sample, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = value
    return out


def scrape(url: str, timeout: float = 5.0) -> dict[Sample, float]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return parse(resp.read().decode("utf-8", "replace"))
    except OSError:
        return {}


def delta(before: Mapping[Sample, float], after: Mapping[Sample, float]) -> dict[Sample, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def value(samples: Mapping[Sample, float], name: str, **labels: str) -> float:
    """Sum of `name` over the samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def summary(d: Mapping[Sample, float]) -> dict[str, float]:
    """The figures a report needs from a metrics delta (absent models give 0)."""
    out: dict[str, float] = {}
    for model in ("protector", "mllm", "harm_detector", "harm_tokenizer", "harm_classifier", "detoxifier"):
        n = value(d, "nv_inference_count", model=model)
        execs = value(d, "nv_inference_exec_count", model=model)
        if n:
            out[f"{model}_inferences"] = n
            out[f"{model}_avg_batch"] = n / execs if execs else 0.0
            reqs = value(d, "nv_inference_request_success", model=model) or n
            out[f"{model}_request_ms"] = value(d, "nv_inference_request_duration_us", model=model) / reqs / 1000
            out[f"{model}_queue_ms"] = value(d, "nv_inference_queue_duration_us", model=model) / reqs / 1000
        failed = value(d, "nv_inference_request_failure", model=model)
        if failed:
            out[f"{model}_failed"] = failed
    guarded = value(d, "mllm_protector_requests_total")
    if guarded:
        out["guarded"] = guarded
        for outcome in ("passed", "rewritten", "rewritten_on_retry", "refused", "detector_error", "failed",
                        "rejected"):
            out[f"outcome_{outcome}"] = value(d, "mllm_protector_outcomes_total", outcome=outcome)
        flagged = out["outcome_rewritten"] + out["outcome_rewritten_on_retry"] + out["outcome_refused"]
        out["flagged_fraction"] = flagged / guarded
    for stage in ("generate", "score", "rewrite"):
        count = value(d, "mllm_protector_stage_latency_seconds_count", stage=stage)
        if count:
            out[f"stage_{stage}_calls"] = count
            out[f"stage_{stage}_ms"] = 1000 * value(d, "mllm_protector_stage_latency_seconds_sum", stage=stage) / count
    return out
