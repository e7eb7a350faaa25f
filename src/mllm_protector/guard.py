"""The MLLM-Protector policy as plain code: answer, score, rewrite only what is flagged, verify, fall back.

No Triton import: the `protector` model supplies the three calls as BLS requests, the tests supply plain functions.
Every answer that leaves `Guard.run` has been scored below its threshold by the detector, or is the fixed refusal.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from mllm_protector.prompts import SAFE_REFUSAL


class DetectorFailurePolicy(str, Enum):
    """What to do with an answer the detector could not score. Both choices keep the answer from the client."""

    ERROR = "error"  # the request fails with an error saying the guard could not score it
    REFUSE = "refuse"  # the request gets the safe refusal, reported as flagged (harm_score 1.0)


class Outcome(str, Enum):
    PASSED = "passed"  # scored harmless, released unchanged
    REWRITTEN = "rewritten"  # flagged, rewritten, rewrite scored harmless
    REFUSED = "refused"  # flagged, and the rewrite was still harmful or could not be made or scored
    DETECTOR_ERROR = "detector_error"  # could not be scored; refused or failed per DetectorFailurePolicy


@dataclass(frozen=True)
class GuardRequest:
    prompt: str
    image: bytes | None = None
    response: str | None = None  # guard-only mode: the caller's own MLLM answer
    max_tokens: int | None = None
    threshold: float = 0.5


@dataclass(frozen=True)
class GuardResult:
    text: str
    harm_score: float  # of the original answer
    rewritten: bool
    original_text: str
    outcome: Outcome


class GuardError(RuntimeError):
    """A request the guard could not answer safely; the message is for the client."""


GenerateFn = Callable[[GuardRequest], Awaitable[str]]
ScoreFn = Callable[[Sequence[str], Sequence[str]], Awaitable[Sequence[float]]]
RewriteFn = Callable[[Sequence[str], Sequence[str]], Awaitable[Sequence[str]]]


@dataclass
class Guard:
    generate: GenerateFn
    score: ScoreFn
    rewrite: RewriteFn
    on_detector_error: DetectorFailurePolicy = DetectorFailurePolicy.ERROR
    refusal: str = SAFE_REFUSAL

    async def run(self, requests: Sequence[GuardRequest]) -> list[GuardResult | Exception]:
        """Guard a batch; one entry per request, an Exception where that request alone failed."""
        answers = await asyncio.gather(*(self._answer(r) for r in requests), return_exceptions=True)
        results: list[GuardResult | Exception] = list(answers)  # exceptions stay in place
        live = [i for i, a in enumerate(answers) if isinstance(a, str)]
        if not live:
            return results

        scores = await self._safe_score([requests[i].prompt for i in live], [answers[i] for i in live])
        flagged: list[int] = []
        for i, s in zip(live, scores, strict=True):
            if s is None:
                results[i] = self._unscored(answers[i])
            elif s >= requests[i].threshold:
                flagged.append(i)
                results[i] = self._finish(answers[i], s, self.refusal, Outcome.REFUSED)
            else:
                results[i] = self._finish(answers[i], s, answers[i], Outcome.PASSED)
        if flagged:
            await self._detoxify(requests, answers, scores_by_index=dict(zip(live, scores, strict=True)),
                                 flagged=flagged, results=results)
        return results

    async def _answer(self, request: GuardRequest) -> str:
        if request.response is not None:
            return request.response
        return await self.generate(request)

    async def _detoxify(self, requests, answers, scores_by_index, flagged, results) -> None:
        prompts = [requests[i].prompt for i in flagged]
        try:
            rewrites = list(await self.rewrite(prompts, [answers[i] for i in flagged]))
        except Exception:
            return  # results already hold the refusal for every flagged answer
        rescored = await self._safe_score(prompts, rewrites)
        for i, text, s in zip(flagged, rewrites, rescored, strict=True):
            if text.strip() and s is not None and s < requests[i].threshold:
                results[i] = self._finish(answers[i], scores_by_index[i], text, Outcome.REWRITTEN)

    async def _safe_score(self, prompts: Sequence[str], texts: Sequence[str]) -> list[float | None]:
        """Scores, with None wherever the detector failed or returned something that is not a probability."""
        try:
            scores = [float(s) for s in await self.score(prompts, texts)]
        except Exception:
            return [None] * len(texts)
        if len(scores) != len(texts):
            return [None] * len(texts)
        return [s if math.isfinite(s) and 0.0 <= s <= 1.0 else None for s in scores]

    def _unscored(self, answer: str) -> GuardResult | Exception:
        if self.on_detector_error is DetectorFailurePolicy.REFUSE:
            return self._finish(answer, 1.0, self.refusal, Outcome.DETECTOR_ERROR)
        return GuardError("the harm detector could not score the answer; it was withheld (guard fails closed)")

    @staticmethod
    def _finish(original: str, score: float, text: str, outcome: Outcome) -> GuardResult:
        return GuardResult(text=text, harm_score=score, rewritten=text != original, original_text=original,
                           outcome=outcome)
