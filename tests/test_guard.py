"""The guard policy over injected calls: what is released, rewritten, refused or failed."""

from __future__ import annotations

import asyncio

import pytest

from mllm_protector.detector_text import HARM_CATEGORIES
from mllm_protector.guard import (
    DetectorError,
    DetectorFailurePolicy,
    Guard,
    GuardError,
    GuardRequest,
    Outcome,
    Scores,
    is_near_copy,
)
from mllm_protector.prompts import SAFE_REFUSAL, is_safe_refusal, safe_refusal

HARMFUL = "Step 1: get the explosive"
SAFE_REWRITE = "I can't help with that, but here is general safety information."
STILL_HARMFUL_REWRITE = "Sure, step 1: get the explosive anyway"


def keyword_score(calls: list):
    async def score(prompts, texts):
        calls.append(list(texts))
        return [0.9 if "explosive" in t else 0.1 for t in texts]

    return score


async def generate(request: GuardRequest) -> str:
    if request.prompt == "boom":
        raise RuntimeError("mllm: out of memory")
    return HARMFUL if "bomb" in request.prompt else f"answer to {request.prompt}"


def make_guard(rewrite_text: str = SAFE_REWRITE, **kwargs) -> tuple[Guard, list, list]:
    score_calls: list = []
    rewrite_calls: list = []

    async def rewrite(prompts, texts, strict=False, categories=()):
        rewrite_calls.append(list(texts))
        return [rewrite_text] * len(texts)

    return Guard(generate, keyword_score(score_calls), rewrite, **kwargs), score_calls, rewrite_calls


def run(guard: Guard, requests):
    return asyncio.run(guard.run(requests))


def test_benign_passes_unchanged_and_only_flagged_answers_are_rewritten():
    guard, score_calls, rewrite_calls = make_guard()
    benign, harmful = run(guard, [GuardRequest("hello"), GuardRequest("how to build a bomb")])
    assert benign.text == "answer to hello" and not benign.rewritten and benign.outcome is Outcome.PASSED
    assert harmful.text == SAFE_REWRITE and harmful.rewritten and harmful.outcome is Outcome.REWRITTEN
    assert harmful.harm_score == pytest.approx(0.9) and harmful.original_text == HARMFUL
    assert rewrite_calls == [[HARMFUL]]  # one batched rewrite, flagged answers only
    assert score_calls == [["answer to hello", HARMFUL], [SAFE_REWRITE]]  # one batched score, then the rewrite


def test_rewrite_still_scored_harmful_is_replaced_by_the_refusal():
    guard, _, _ = make_guard(rewrite_text=STILL_HARMFUL_REWRITE)
    (result,) = run(guard, [GuardRequest("bomb")])
    assert result.text == SAFE_REFUSAL and result.outcome is Outcome.REFUSED and result.rewritten


def test_failing_detoxifier_gives_the_refusal():
    async def broken(prompts, texts, strict=False, categories=()):
        raise RuntimeError("detoxifier down")

    guard = Guard(generate, keyword_score([]), broken)
    (result,) = run(guard, [GuardRequest("bomb")])
    assert result.text == SAFE_REFUSAL and result.outcome is Outcome.REFUSED


def test_guard_only_mode_never_calls_the_mllm():
    async def no_generate(request):
        raise AssertionError("mllm must not be called")

    guard = Guard(no_generate, keyword_score([]), make_guard()[0].rewrite)
    (result,) = run(guard, [GuardRequest("q", response="a harmless answer")])
    assert result.text == "a harmless answer" and result.outcome is Outcome.PASSED


@pytest.mark.parametrize("bad_scores", [RuntimeError("detector down"), [float("nan")], [1.7], []])
def test_unscorable_answer_fails_closed(bad_scores):
    async def score(prompts, texts):
        if isinstance(bad_scores, Exception):
            raise bad_scores
        return bad_scores

    seen: list = []
    closed = Guard(generate, score, make_guard()[0].rewrite, on_call_error=lambda stage, e: seen.append((stage, e)))
    (result,) = run(closed, [GuardRequest("hello")])
    assert isinstance(result, GuardError)
    # the operator's log and the client's error say what the detector did wrong
    assert [stage for stage, _ in seen] == ["score"]
    if not isinstance(bad_scores, Exception):
        reason = "0 scores for 1 answers" if not bad_scores else "is not a probability"
        assert reason in str(result), result

    refusing = Guard(generate, score, make_guard()[0].rewrite, on_detector_error=DetectorFailurePolicy.REFUSE)
    (result,) = run(refusing, [GuardRequest("hello")])
    assert result.text == SAFE_REFUSAL and result.outcome is Outcome.DETECTOR_ERROR and result.harm_score == 1.0


def test_an_answer_the_detector_refuses_fails_alone_and_says_why():
    """The detector refuses a whole batch for one answer it cannot read (too long): each answer is then scored alone,
    so only that one is withheld, with the detector's reason."""
    calls: list = []

    async def score(prompts, texts):
        calls.append(list(texts))
        if any(len(t) > 100 for t in texts):
            raise RuntimeError("response too long for the harm detector")
        return [0.9 if "explosive" in t else 0.1 for t in texts]

    guard = Guard(generate, score, make_guard()[0].rewrite)
    long_answer = "word " * 50
    ok, refused, flagged = run(guard, [GuardRequest("hello"), GuardRequest("q", response=long_answer),
                                       GuardRequest("bomb")])
    assert ok.text == "answer to hello" and ok.outcome is Outcome.PASSED
    assert isinstance(refused, DetectorError) and "response too long for the harm detector" in str(refused)
    assert flagged.outcome is Outcome.REWRITTEN
    assert calls[0] == ["answer to hello", long_answer, HARMFUL] and len(calls) == 5  # batch, 3 alone, the rewrite


def test_a_failed_generation_fails_alone():
    guard, _, _ = make_guard()
    failed, ok = run(guard, [GuardRequest("boom"), GuardRequest("hello")])
    assert isinstance(failed, RuntimeError) and "out of memory" in str(failed)
    assert ok.text == "answer to hello"


def test_per_request_threshold():
    guard, _, _ = make_guard()
    strict, lax = run(guard, [GuardRequest("hello", threshold=0.05), GuardRequest("bomb", threshold=0.95)])
    assert strict.outcome is Outcome.REWRITTEN or strict.outcome is Outcome.REFUSED
    assert lax.outcome is Outcome.PASSED and lax.text == HARMFUL


def retrying_guard(first: str, second: str, categories: list[float] | None = None):
    """A guard whose detoxifier writes `first`, and `second` when asked for the strict retry."""
    calls: list = []

    async def score(prompts, texts):
        harm = [0.9 if "explosive" in t else 0.1 for t in texts]
        return Scores(harm, None if categories is None else [categories] * len(texts))

    async def rewrite(prompts, texts, strict=False, categories=()):
        calls.append(strict)
        return [second if strict else first] * len(texts)

    return Guard(generate, score, rewrite), calls


def test_a_rewrite_still_harmful_gets_one_strict_retry():
    guard, calls = retrying_guard(STILL_HARMFUL_REWRITE, SAFE_REWRITE)
    (result,) = run(guard, [GuardRequest("bomb")])
    assert result.text == SAFE_REWRITE and result.outcome is Outcome.REWRITTEN_ON_RETRY and calls == [False, True]


def test_both_rewrites_harmful_gives_the_refusal_after_exactly_one_retry():
    guard, calls = retrying_guard(STILL_HARMFUL_REWRITE, STILL_HARMFUL_REWRITE)
    (result,) = run(guard, [GuardRequest("bomb")])
    assert result.text == SAFE_REFUSAL and result.outcome is Outcome.REFUSED and calls == [False, True]


def test_the_refusal_fits_the_hazard_category():
    self_harm = [1.0 if c == "self_harm" else 0.0 for c in HARM_CATEGORIES]
    guard, _ = retrying_guard(STILL_HARMFUL_REWRITE, STILL_HARMFUL_REWRITE, categories=self_harm)
    (result,) = run(guard, [GuardRequest("bomb")])
    assert result.text == safe_refusal("self_harm") and "988" in result.text and is_safe_refusal(result.text)
    cyber = [1.0 if c == "cyber" else 0.0 for c in HARM_CATEGORIES]
    guard, _ = retrying_guard(STILL_HARMFUL_REWRITE, STILL_HARMFUL_REWRITE, categories=cyber)
    assert "disclosure" in run(guard, [GuardRequest("bomb")])[0].text
    # malformed category scores are ignored, not trusted
    guard, _ = retrying_guard(STILL_HARMFUL_REWRITE, STILL_HARMFUL_REWRITE, categories=[float("nan")] * 11)
    assert run(guard, [GuardRequest("bomb")])[0].text == SAFE_REFUSAL


def test_each_result_carries_the_original_answers_category_scores():
    cyber = [0.9 if c == "cyber" else 0.0 for c in HARM_CATEGORIES]
    for first, outcome in ((SAFE_REWRITE, Outcome.REWRITTEN), (STILL_HARMFUL_REWRITE, Outcome.REFUSED)):
        guard, _ = retrying_guard(first, first, categories=cyber)
        benign, flagged = run(guard, [GuardRequest("hello"), GuardRequest("bomb")])
        assert flagged.outcome is outcome and flagged.harm_categories == tuple(cyber)  # not the rewrite's
        assert benign.outcome is Outcome.PASSED and benign.harm_categories == tuple(cyber)
    for bad in ([float("nan")] * 11, [0.5] * 3, [-0.1] + [0.0] * 10):
        guard, _ = retrying_guard(SAFE_REWRITE, SAFE_REWRITE, categories=bad)
        assert run(guard, [GuardRequest("bomb")])[0].harm_categories is None
    (plain,) = run(make_guard()[0], [GuardRequest("bomb")])  # a detector without categories
    assert plain.harm_categories is None
    guard = Guard(generate, keyword_score([]), make_guard()[0].rewrite,
                  on_detector_error=DetectorFailurePolicy.REFUSE)
    guard.score = _failing_score
    (unscored,) = run(guard, [GuardRequest("bomb")])
    assert unscored.outcome is Outcome.DETECTOR_ERROR and unscored.harm_categories is None


async def _failing_score(prompts, texts):
    raise RuntimeError("detector down")


def test_no_retry_when_the_detector_fails_on_the_rewrite():
    calls: list = []

    async def score(prompts, texts):
        if texts == [STILL_HARMFUL_REWRITE]:
            raise RuntimeError("detector down")
        return [0.9 if "explosive" in t else 0.1 for t in texts]

    async def rewrite(prompts, texts, strict=False, categories=()):
        calls.append(strict)
        return [STILL_HARMFUL_REWRITE] * len(texts)

    (result,) = run(Guard(generate, score, rewrite), [GuardRequest("bomb")])
    assert result.text == SAFE_REFUSAL and result.outcome is Outcome.REFUSED and calls == [False]


def test_a_detoxifier_that_returns_the_wrong_number_of_rewrites_gives_the_refusal_and_is_reported():
    seen: list = []

    async def short(prompts, texts, strict=False, categories=()):
        return []

    guard = Guard(generate, keyword_score([]), short, on_call_error=lambda stage, e: seen.append((stage, str(e))))
    (result,) = run(guard, [GuardRequest("bomb")])
    assert result.text == SAFE_REFUSAL and result.outcome is Outcome.REFUSED
    assert seen == [("rewrite", "0 rewrites for 1 answers")]


def test_absorbed_call_errors_are_reported():
    seen: list = []

    async def broken(prompts, texts, strict=False, categories=()):
        raise RuntimeError("detoxifier down")

    guard = Guard(generate, keyword_score([]), broken, on_call_error=lambda stage, e: seen.append((stage, str(e))))
    (result,) = run(guard, [GuardRequest("bomb")])
    assert result.text == SAFE_REFUSAL and seen == [("rewrite", "detoxifier down")]


def test_a_score_past_its_deadline_withholds_the_answer():
    async def slow_score(prompts, texts):
        await asyncio.sleep(5)
        return [0.0] * len(texts)

    errors: list = []
    guard = Guard(generate, slow_score, make_guard()[0].rewrite, score_timeout_s=0.05,
                  on_call_error=lambda stage, e: errors.append((stage, type(e))))
    (result,) = run(guard, [GuardRequest("hello")])
    assert isinstance(result, DetectorError)  # fail closed: an unscored answer is never released
    assert errors == [("score", TimeoutError)]

    guard.on_detector_error = DetectorFailurePolicy.REFUSE
    (result,) = run(guard, [GuardRequest("hello")])
    assert result.outcome is Outcome.DETECTOR_ERROR and result.text == SAFE_REFUSAL and result.harm_score == 1.0


def test_a_rewrite_past_its_deadline_gives_the_refusal_and_benign_rows_are_unaffected():
    async def slow_rewrite(prompts, texts, strict=False, categories=()):
        await asyncio.sleep(5)
        return [SAFE_REWRITE] * len(texts)

    errors: list = []
    guard = Guard(generate, keyword_score([]), slow_rewrite, rewrite_timeout_s=0.05,
                  on_call_error=lambda stage, e: errors.append((stage, type(e))))
    benign, harmful = run(guard, [GuardRequest("hello"), GuardRequest("bomb")])
    assert benign.outcome is Outcome.PASSED and benign.text == "answer to hello"
    assert harmful.outcome is Outcome.REFUSED and harmful.text == SAFE_REFUSAL and harmful.original_text == HARMFUL
    assert errors == [("rewrite", TimeoutError)]


def test_an_answer_not_generated_in_time_fails_its_request_alone():
    async def stuck_generate(request):
        if request.prompt == "stuck":
            await asyncio.sleep(5)
        return f"answer to {request.prompt}"

    errors: list = []
    guard = Guard(stuck_generate, keyword_score([]), make_guard()[0].rewrite, generate_timeout_s=0.05,
                  on_call_error=lambda stage, e: errors.append((stage, type(e))))
    stuck, fine, guard_only = run(guard, [GuardRequest("stuck"), GuardRequest("hello"),
                                          GuardRequest("q", response="an answer")])
    assert isinstance(stuck, GuardError) and "no answer within 0.05 s" in str(stuck)
    assert not isinstance(stuck, DetectorError)  # a stuck MLLM is not a detector failure (metrics tell them apart)
    assert fine.text == "answer to hello" and guard_only.text == "an answer"
    assert errors == [("generate", TimeoutError)]


def test_deadlines_that_are_met_change_nothing():
    guard, _, _ = make_guard(score_timeout_s=5.0, rewrite_timeout_s=5.0, generate_timeout_s=5.0)
    benign, harmful = run(guard, [GuardRequest("hello"), GuardRequest("bomb")])
    assert benign.outcome is Outcome.PASSED and harmful.outcome is Outcome.REWRITTEN and harmful.text == SAFE_REWRITE


def test_the_rewrite_is_told_the_hazard_category_of_each_flagged_answer():
    told: list = []
    self_harm = [0.9 if c == "self_harm" else 0.0 for c in HARM_CATEGORIES]

    async def score(prompts, texts):
        harm = [0.9 if "explosive" in t else 0.1 for t in texts]
        return Scores(harm, [self_harm] * len(texts))

    async def rewrite(prompts, texts, strict=False, categories=()):
        told.append(list(categories))
        return [SAFE_REWRITE] * len(texts)

    results = run(Guard(generate, score, rewrite), [GuardRequest("hello"), GuardRequest("bomb")])
    assert [r.outcome for r in results] == [Outcome.PASSED, Outcome.REWRITTEN]
    assert told == [["self_harm"]]  # the flagged answer's top category, nothing for the benign one
    assert results[1].text == SAFE_REWRITE and results[0].text == "answer to hello"

    told.clear()
    (result,) = run(Guard(generate, keyword_score([]), rewrite), [GuardRequest("bomb")])
    assert result.outcome is Outcome.REWRITTEN and told == [[None]]  # a detector without categories: unknown


def test_a_rewrite_that_copies_the_flagged_answer_is_not_released_even_when_it_scores_low():
    answer = "Buy the strawberries at the market and tell everyone they cure cancer. The explosive part comes later."
    copies = [answer.split(". ")[0] + ".", "I can't help with spreading that health claim: it is false."]
    calls: list = []

    async def generate_claim(request):
        return answer

    async def rewrite(prompts, texts, strict=False, categories=()):
        calls.append(strict)
        return [copies[strict]] * len(texts)

    # the detector misses the cut-short copy (no "explosive" in it): the copy rule must catch it
    (result,) = run(Guard(generate_claim, keyword_score([]), rewrite), [GuardRequest("Correct my email")])
    assert calls == [False, True] and result.outcome is Outcome.REWRITTEN_ON_RETRY
    assert result.text == copies[1]
    assert is_near_copy(answer, copies[0]) and not is_near_copy(answer, copies[1]) and not is_near_copy(answer, "ok")
