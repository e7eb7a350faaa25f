"""The MLLM-Protector policy as plain code: answer, score, rewrite only what is flagged, verify, retry once with a
stricter prompt, fall back to a refusal that fits the hazard category.

No Triton import: the `protector` model supplies the three calls as BLS requests, the tests supply plain functions.
Every answer that leaves `Guard.run` has been scored below its threshold by the detector, or is a fixed refusal.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from mllm_protector.detector_text import HARM_CATEGORIES
from mllm_protector.prompts import first_sentence, safe_refusal

# A rewrite whose decline shares at least this share of its word 4-grams with the flagged answer is that answer, not
# a rewrite: it is not released whatever its score (a flagged answer cut short can score just under the threshold).
NEAR_COPY_SHARE = 0.5


class DetectorFailurePolicy(str, Enum):
    """What to do with an answer the detector could not score. Both choices keep the answer from the client."""

    ERROR = "error"  # the request fails with an error saying the guard could not score it
    REFUSE = "refuse"  # the request gets the safe refusal, reported as flagged (harm_score 1.0)


class Outcome(str, Enum):
    PASSED = "passed"  # scored harmless, released unchanged
    REWRITTEN = "rewritten"  # flagged, rewritten, rewrite scored harmless
    REWRITTEN_ON_RETRY = "rewritten_on_retry"  # the first rewrite was still harmful, the stricter retry was not
    REFUSED = "refused"  # flagged, and both rewrites were still harmful, or could not be made or scored
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
    # the original answer's hazard-category scores (`HARM_CATEGORIES` order, summing to harm_score), None when the
    # detector gave none or could not score it
    harm_categories: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Scores:
    """The detector's verdict on a list of answers: harm scores and, when the detector gives them, each answer's
    hazard-category scores (in `HARM_CATEGORIES` order). A score function may also return the harm scores alone."""

    harm: Sequence[float]
    categories: Sequence[Sequence[float]] | None = None


class GuardError(RuntimeError):
    """A request the guard could not answer safely; the message is for the client."""


class DetectorError(GuardError):
    """The detector could not score the answer, so it was withheld (counted as `detector_error`)."""


GenerateFn = Callable[[GuardRequest], Awaitable[str]]
ScoreFn = Callable[[Sequence[str], Sequence[str]], Awaitable[Sequence[float] | Scores]]
# (prompts, answers, *, strict: bool, categories: list[str | None]) -> rewrites; a category is the detector's top
# hazard category of the answer (None when it gave none), so the rewrite can point to the help that fits
RewriteFn = Callable[..., Awaitable[Sequence[str]]]


@dataclass
class Guard:
    generate: GenerateFn
    score: ScoreFn
    rewrite: RewriteFn
    on_detector_error: DetectorFailurePolicy = DetectorFailurePolicy.ERROR
    refusal_for: Callable[[str | None], str] = safe_refusal  # hazard category (or None) -> the fallback text
    # told about every failed call the policy absorbs (a refusal instead of a rewrite, a withheld answer), so that
    # a broken detoxifier or detector shows in the server log instead of only in the outcome counts
    on_call_error: Callable[[str, Exception], None] = lambda stage, error: None
    # Deadlines in seconds (None: none). A score that does not come in time is a detector failure (fail closed); a
    # flagged answer whose rewriting (both passes, with their re-scoring) is not done in time gets the refusal.
    score_timeout_s: float | None = None
    rewrite_timeout_s: float | None = None
    # An answer not generated in time fails its request with an error (a stuck MLLM must not hold clients forever).
    generate_timeout_s: float | None = None

    async def run(self, requests: Sequence[GuardRequest]) -> list[GuardResult | Exception]:
        """Guard a batch; one entry per request, an Exception where that request alone failed."""
        answers = await asyncio.gather(*(self._answer(r) for r in requests), return_exceptions=True)
        results: list[GuardResult | Exception] = list(answers)  # exceptions stay in place
        live = [i for i, a in enumerate(answers) if isinstance(a, str)]
        if not live:
            return results

        scores, per_answer, errors = await self._safe_score([requests[i].prompt for i in live],
                                                            [answers[i] for i in live])
        flagged: list[int] = []
        vectors_of = dict(zip(live, per_answer, strict=True))
        category_of = {i: None if v is None else top_category(v) for i, v in vectors_of.items()}
        for i, s, error in zip(live, scores, errors, strict=True):
            if s is None:
                results[i] = self._unscored(answers[i], error)
            elif s >= requests[i].threshold:
                flagged.append(i)
                results[i] = self._finish(answers[i], s, self.refusal_for(category_of[i]), Outcome.REFUSED,
                                          vectors_of[i])
            else:
                results[i] = self._finish(answers[i], s, answers[i], Outcome.PASSED, vectors_of[i])
        if flagged:
            score_of = dict(zip(live, scores, strict=True))
            accepted = await self._within(
                "rewrite", self.rewrite_timeout_s, self._detoxify(requests, answers, flagged, category_of), default={}
            )
            for i, (text, outcome) in accepted.items():
                results[i] = self._finish(answers[i], score_of[i], text, outcome, vectors_of[i])
        return results

    async def _within(self, stage: str, timeout: float | None, work: Awaitable, default):
        """`work`'s result, or `default` (reported to `on_call_error`) when it is not done within `timeout`.
        Shielded: a BLS call already sent is left to finish and its answer dropped, instead of cancelling a
        future the backend will still resolve."""
        if timeout is None:
            return await work
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout)
        except TimeoutError:
            self.on_call_error(stage, TimeoutError(f"no answer within {timeout:g} s"))
            return default

    async def _answer(self, request: GuardRequest) -> str:
        if request.response is not None:
            return request.response
        answer = await self._within("generate", self.generate_timeout_s, self.generate(request), default=None)
        if answer is None:
            raise GuardError(f"the MLLM gave no answer within {self.generate_timeout_s:g} s")
        return answer

    async def _detoxify(self, requests, answers, flagged, category_of) -> dict[int, tuple[str, Outcome]]:
        """Rewrite the flagged answers; a rewrite still scored harmful gets one retry with the stricter prompt.
        Returns the accepted rewrites by index; the others keep the refusal already in the results."""
        accepted: dict[int, tuple[str, Outcome]] = {}
        pending = flagged
        for strict in (False, True):
            prompts = [requests[i].prompt for i in pending]
            try:
                rewrites = list(await self.rewrite(prompts, [answers[i] for i in pending], strict=strict,
                                                   categories=[category_of[i] for i in pending]))
            except Exception as e:
                self.on_call_error("rewrite", e)
                return accepted
            if len(rewrites) != len(pending):
                self.on_call_error("rewrite", ValueError(f"{len(rewrites)} rewrites for {len(pending)} answers"))
                return accepted
            copies = [is_near_copy(answers[i], first_sentence(t)) for i, t in zip(pending, rewrites, strict=True)]
            rescored, _, _ = await self._safe_score(prompts, rewrites)
            retry = []
            for i, text, s, copied in zip(pending, rewrites, rescored, copies, strict=True):
                if s is None:
                    continue  # the detector failed on the rewrite: fail closed, no second try
                if text.strip() and s < requests[i].threshold and not copied:
                    accepted[i] = (text, Outcome.REWRITTEN_ON_RETRY if strict else Outcome.REWRITTEN)
                else:
                    retry.append(i)
            pending = retry
            if not pending:
                break
        return accepted

    async def _safe_score(
        self, prompts: Sequence[str], texts: Sequence[str], alone_if_refused: bool = True
    ) -> tuple[list[float | None], list[tuple[float, ...] | None], list[str | None]]:
        """(scores, hazard-category scores, errors), with None wherever the detector failed or returned something
        that is not a probability; category scores are None too where the detector gave none or malformed ones.
        When the detector refuses the whole batch (one answer too long for it, say), each answer is scored alone
        within what is left of the same deadline, so only the answers it refuses go unscored; `errors` says why."""
        n = len(texts)
        start = time.monotonic()
        try:
            raw = await self._within("score", self.score_timeout_s, self.score(prompts, texts), default=None)
            if raw is None:
                return [None] * n, [None] * n, [None] * n
            harm, per_answer = (raw.harm, raw.categories) if isinstance(raw, Scores) else (raw, None)
            scores = [float(s) for s in harm]
        except Exception as e:
            self.on_call_error("score", e)
            if n == 1 or not alone_if_refused:
                return [None] * n, [None] * n, [str(e)] * n
            left = None if self.score_timeout_s is None else self.score_timeout_s - (time.monotonic() - start)
            if left is not None and left <= 0:
                return [None] * n, [None] * n, [str(e)] * n
            alone = asyncio.gather(*(self._safe_score([p], [t], alone_if_refused=False)
                                     for p, t in zip(prompts, texts, strict=True)))
            results = await self._within("score", left, alone, default=None)
            if results is None:
                return [None] * n, [None] * n, [str(e)] * n
            return [r[0][0] for r in results], [r[1][0] for r in results], [r[2][0] for r in results]
        if len(scores) != n:
            why = f"it returned {len(scores)} scores for {n} answers"
            self.on_call_error("score", ValueError(why))
            return [None] * n, [None] * n, [why] * n
        checked = [s if math.isfinite(s) and 0.0 <= s <= 1.0 else None for s in scores]
        errors = [None if c is not None else f"its score {s} is not a probability" for s, c in
                  zip(scores, checked, strict=True)]
        if any(errors):
            self.on_call_error("score", ValueError("; ".join(e for e in errors if e)))
        if per_answer is None or len(per_answer) != n:
            return checked, [None] * n, errors
        vectors = [_category_scores(c) if s is not None else None for s, c in zip(checked, per_answer, strict=True)]
        return checked, vectors, errors

    def _unscored(self, answer: str, error: str | None = None) -> GuardResult | Exception:
        if self.on_detector_error is DetectorFailurePolicy.REFUSE:
            return self._finish(answer, 1.0, self.refusal_for(None), Outcome.DETECTOR_ERROR)
        why = f" ({error})" if error else ""
        return DetectorError(f"the harm detector could not score the answer{why}; it was withheld (guard fails closed)")

    @staticmethod
    def _finish(original: str, score: float, text: str, outcome: Outcome,
                categories: tuple[float, ...] | None = None) -> GuardResult:
        return GuardResult(text=text, harm_score=score, rewritten=text != original, original_text=original,
                           outcome=outcome, harm_categories=categories)


def _category_scores(scores: Sequence[float]) -> tuple[float, ...] | None:
    """`scores` as one finite, non-negative score per hazard category, or None if they are not that."""
    try:
        values = tuple(float(v) for v in scores)
    except (TypeError, ValueError):
        return None
    if len(values) != len(HARM_CATEGORIES) or not all(math.isfinite(v) and v >= 0.0 for v in values):
        return None
    return values


def top_category(scores: Sequence[float]) -> str | None:
    """The hazard category with the highest score, None for scores that are malformed or all zero."""
    values = _category_scores(scores)
    if values is None or max(values) <= 0.0:
        return None
    return HARM_CATEGORIES[values.index(max(values))]


def word_4grams(text: str) -> list[tuple[str, ...]]:
    """`text`'s word 4-grams, lower-cased, in order."""
    words = re.findall(r"\w+", text.lower())
    return [tuple(words[k : k + 4]) for k in range(len(words) - 3)]


def is_near_copy(original: str, rewrite: str) -> bool:
    """Whether at least NEAR_COPY_SHARE of `rewrite`'s word 4-grams are in `original` (texts under 4 words: no)."""
    grams = set(word_4grams(rewrite))
    return bool(grams) and len(grams & set(word_4grams(original))) >= NEAR_COPY_SHARE * len(grams)
