"""Safety evaluation of the guard: attack success rate with and without MLLM-Protector, and benign retention.

Readers for the public benchmarks' own layouts (:mod:`.readers`: MM-SafetyBench, FigStep / SafeBench, JSONL) and a
generated built-in set (:mod:`.builtin`); judges (:mod:`.judges`: refusal strings, the project's own harm detector,
an optional OpenAI-compatible chat judge); a resumable, rate-bounded runner against any Triton endpoint of this
project (:mod:`.runner`); reports (:mod:`.report`, :mod:`.charts`); the command line (:mod:`.cli`).
"""

from __future__ import annotations

from .builtin import builtin_items
from .items import BENIGN, HARMFUL, EvalItem, parse_label, select
from .judges import ChatJudge, DetectorJudge, RefusalJudge, Verdict
from .readers import (
    FIGSTEP_PROMPT,
    DatasetError,
    detect_format,
    read_dataset,
    read_figstep,
    read_jsonl,
    read_mm_safetybench,
)
from .report import markdown, summarize, write_reports
from .runner import RateLimiter, ResultStore, run_eval

__all__ = [
    "BENIGN",
    "FIGSTEP_PROMPT",
    "HARMFUL",
    "ChatJudge",
    "DatasetError",
    "DetectorJudge",
    "EvalItem",
    "RateLimiter",
    "RefusalJudge",
    "ResultStore",
    "Verdict",
    "builtin_items",
    "detect_format",
    "markdown",
    "parse_label",
    "read_dataset",
    "read_figstep",
    "read_jsonl",
    "read_mm_safetybench",
    "run_eval",
    "select",
    "summarize",
    "write_reports",
]
