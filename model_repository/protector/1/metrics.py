"""The protector's Prometheus metrics (python backend metrics API), served by Triton on the metrics port."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import triton_python_backend_utils as pb_utils

from mllm_protector.detector_text import HARM_CATEGORIES
from mllm_protector.guard import DetectorError, GuardResult, Outcome, top_category
from mllm_protector.tensors import InputError

SCORE_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
STAGES = ("generate", "score", "rewrite")
FLAGGED = (Outcome.REWRITTEN, Outcome.REWRITTEN_ON_RETRY, Outcome.REFUSED)


class ProtectorMetrics:
    def __init__(self, model: str) -> None:
        labels = {"model": model}
        F = pb_utils.MetricFamily
        # The families must outlive their metrics, so both are kept on the instance.
        self._families = [
            F("mllm_protector_requests_total", "Guarded answers (rows) handled", F.COUNTER),
            F("mllm_protector_outcomes_total", "Guarded answers by outcome", F.COUNTER),
            F("mllm_protector_harm_score", "Harm score of the original answers", F.HISTOGRAM),
            F("mllm_protector_stage_latency_seconds", "Latency of each guard stage's call", F.HISTOGRAM),
            F("mllm_protector_flagged_total", "Flagged answers by the detector's top hazard category", F.COUNTER),
        ]
        requests, outcomes, scores, latency, flagged = self._families
        self.requests = requests.Metric(labels=labels)
        outcome_names = [o.value for o in Outcome] + ["failed", "rejected"]
        self.outcomes = {name: outcomes.Metric(labels={**labels, "outcome": name}) for name in outcome_names}
        self.scores = scores.Metric(labels=labels, buckets=SCORE_BUCKETS)
        self.latency = {s: latency.Metric(labels={**labels, "stage": s}, buckets=LATENCY_BUCKETS) for s in STAGES}
        # "unknown": a detector that gives no categories
        self.flagged = {c: flagged.Metric(labels={**labels, "category": c}) for c in (*HARM_CATEGORIES, "unknown")}

    def timed(self, stage: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`call`, observing its wall time (errors included) under `stage`."""
        histogram = self.latency[stage]

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - start)

        return wrapper

    def record(self, results: list[GuardResult | Exception]) -> None:
        """One request's rows, whatever became of them. A request with any failed row is answered with an error, so
        its other rows were not released either: they count as `failed`, not as what the guard made of them. A
        request rejected as invalid counts once, as `rejected`."""
        request_failed = any(isinstance(r, Exception) for r in results)
        for result in results:
            self.requests.increment(1)
            if isinstance(result, GuardResult):
                if result.outcome is not Outcome.DETECTOR_ERROR:
                    self.scores.observe(result.harm_score)
                outcome = "failed" if request_failed else result.outcome.value
                if result.outcome in FLAGGED:
                    self.flagged[top_category(result.harm_categories or ()) or "unknown"].increment(1)
            elif isinstance(result, DetectorError):
                outcome = Outcome.DETECTOR_ERROR.value
            elif isinstance(result, InputError):
                outcome = "rejected"
            else:
                outcome = "failed"
            self.outcomes[outcome].increment(1)
