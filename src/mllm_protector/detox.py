"""The detoxifier: rewrites flagged answers into harmless ones with a small instruct model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mllm_protector.prompts import detox_messages
from mllm_protector.textgen import ChatGenerator


class Detoxifier:
    def __init__(self, model_dir: str | Path, max_new_tokens: int = 128, rows_per_generate: int | None = None) -> None:
        self.generator = ChatGenerator(model_dir, rows_per_generate=rows_per_generate)
        self.max_new_tokens = max_new_tokens

    def rewrite(self, questions: Sequence[str], answers: Sequence[str], strict: Sequence[bool] = ()) -> list[str]:
        """One greedy rewrite per (question, answer), `rows_per_generate` rows per generate call (None: all at once).
        `strict[i]` asks for the stricter retry prompt for row i."""
        strict = list(strict) or [False] * len(answers)
        conversations = [detox_messages(q, a, s) for q, a, s in zip(questions, answers, strict, strict=True)]
        return self.generator.generate(conversations, self.max_new_tokens)
