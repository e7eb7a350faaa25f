"""The suites: which model, which input data, which concurrencies and protocols, how long a measurement is.

Fast suites (the detector and the guard-only path: milliseconds per request) sweep concurrency 1..16 over gRPC and
HTTP with time windows. Suites that reach an LLM generation (`mllm`, `detoxifier`, and the `protector` suites that
call them: seconds per request on CPU) run a few concurrency points over gRPC with a fixed request count and a small
`max_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .analyzer import Window

FAST_CONCURRENCY = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Suite:
    name: str
    model: str
    inputs: str  # an input kind of benchmarks.perf.inputs
    concurrency: tuple[int, ...]
    protocols: tuple[str, ...]
    window: Window
    title: str
    # requests per measurement in `requests` windows, as a multiple of the concurrency (at least `window.requests`)
    requests_per_client: int = 0
    slow: bool = False

    def window_for(self, concurrency: int) -> Window:
        if self.window.mode == "requests" and self.requests_per_client:
            return replace(self.window, requests=max(self.window.requests, self.requests_per_client * concurrency))
        return self.window

    def scaled(self, factor: float) -> Suite:
        """The same suite with windows `factor` times as long (bench --quick uses < 1)."""
        w = self.window
        w = replace(w, interval_ms=max(300, int(w.interval_ms * factor)), requests=max(2, int(w.requests * factor)))
        return replace(self, window=w, requests_per_client=max(1, int(self.requests_per_client * factor))
                       if self.requests_per_client else 0)


def _time(ms: int = 2000) -> Window:
    return Window(mode="time", interval_ms=ms)


def _count(n: int) -> Window:
    return Window(mode="requests", requests=n)


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("harm_detector", "harm_detector", "detector", FAST_CONCURRENCY, ("grpc", "http"), _time(),
              "harm_detector (ensemble: tokenizer -> ONNX classifier), benign + harmful answers"),
        Suite("guard_benign", "protector", "guard_benign", FAST_CONCURRENCY, ("grpc", "http"), _time(),
              "protector guard-only (`response` given), benign answers"),
        Suite("guard_harmful", "protector", "guard_harmful", (1, 4), ("grpc",), _count(4),
              "protector guard-only, harmful answers (scored, rewritten, re-scored)", requests_per_client=2, slow=True),
        Suite("benign_text", "protector", "benign_text", (1, 4), ("grpc",), _count(4),
              "protector, benign text prompts (max_tokens 16)", requests_per_client=2, slow=True),
        Suite("benign_image", "protector", "benign_image", (1, 8), ("grpc", "http"), _count(6),
              "protector, benign images (max_tokens 16)", requests_per_client=2, slow=True),
        Suite("typographic", "protector", "typographic", (1, 4), ("grpc",), _count(4),
              "protector, FigStep-style typographic attack images (max_tokens 16)", requests_per_client=2, slow=True),
        Suite("mllm", "mllm", "benign_image", (1, 8), ("grpc", "http"), _count(6),
              "bare mllm (OCR + SmolLM2-135M stand-in), benign images (max_tokens 16)", requests_per_client=2,
              slow=True),
        Suite("detoxifier", "detoxifier", "detox", (1, 4), ("grpc",), _count(1),
              "detoxifier (SmolLM2-135M, max_new_tokens from its config), harmful answers", requests_per_client=1,
              slow=True),
    )
}

# Models a server must load for each suite (explicit model control; ensemble and BLS dependencies included).
DETECTOR_MODELS = ("harm_detector", "harm_tokenizer", "harm_classifier")
ALL_MODELS = (*DETECTOR_MODELS, "mllm", "detoxifier", "protector")


def models_for(suites) -> tuple[str, ...]:
    if all(SUITES[s].model == "harm_detector" for s in suites):
        return DETECTOR_MODELS
    return ALL_MODELS
