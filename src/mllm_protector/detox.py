"""The detoxifier: rewrites flagged answers into harmless ones: a small instruct model declines, naming the request,
and the hazard category's fixed help follows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mllm_protector.detector_text import HARM_CATEGORIES
from mllm_protector.prompts import compose_rewrite, detox_messages
from mllm_protector.tensors import InputError
from mllm_protector.textgen import ChatGenerator


class Detoxifier:
    def __init__(self, model_dir: str | Path, max_new_tokens: int = 128, rows_per_generate: int | None = None) -> None:
        self.generator = ChatGenerator(model_dir, rows_per_generate=rows_per_generate)
        self.max_new_tokens = max_new_tokens

    def rewrite(
        self,
        questions: Sequence[str],
        answers: Sequence[str],
        strict: Sequence[bool] = (),
        categories: Sequence[str | None] = (),
    ) -> list[str]:
        """One rewrite per (question, answer): the model's decline (`declines`) followed by the hazard category's
        fixed help (`prompts.compose_rewrite`); "" where the model wrote nothing."""
        categories = list(categories) or [None] * len(answers)
        declines = self.declines(questions, answers, strict, categories)
        return [compose_rewrite(d, c) if d.strip() else "" for d, c in zip(declines, categories, strict=True)]

    def declines(
        self,
        questions: Sequence[str],
        answers: Sequence[str],
        strict: Sequence[bool] = (),
        categories: Sequence[str | None] = (),
    ) -> list[str]:
        """The model's greedy generation per (question, answer), `rows_per_generate` rows per generate call (None:
        all at once). `strict[i]` asks for the stricter retry prompt for row i; `categories[i]` is the detector's
        hazard category of answer i (None or absent: unknown)."""
        strict = list(strict) or [False] * len(answers)
        categories = list(categories) or [None] * len(answers)
        conversations = [detox_messages(q, a, s, c) for q, a, s, c in zip(questions, answers, strict, categories,
                                                                            strict=True)]
        return self.generator.generate(conversations, self.max_new_tokens)


def hazard_category(value: str) -> str | None:
    """A client's `harm_category` value: one of `HARM_CATEGORIES`, or "" for unknown (None)."""
    if value and value not in HARM_CATEGORIES:
        raise InputError(f"harm_category must be one of {', '.join(HARM_CATEGORIES)} or empty, got {value[:40]!r}")
    return value or None
