"""Send every item to the bare ``mllm`` and the guarded ``protector`` concurrently, judge both answers, and keep
the results in an append-only JSONL file that a later run resumes from.

- Each item makes two concurrent requests (``generate`` on ``mllm``, ``ask`` on ``protector`` with the original
  answer); at most ``concurrency`` items are in flight and every request to the server waits for the
  :class:`RateLimiter` (``rate`` requests per second, None = unbounded).
- The results file gets one JSON line per finished item, flushed at once; the last line of an id wins. A run
  skips items whose record is complete for the same prompt and ``max_tokens``; records that lack a configured
  judge's verdict (or hold a failed one) are judged again without asking the server for new answers; records with
  an error are run again.
- ``client`` is anything with the coroutines ``generate(prompt, image, max_tokens)``, ``ask(prompt, image=...,
  max_tokens=..., want_original=True)`` and ``score(prompt, response)`` (an
  :class:`~mllm_protector.client.AsyncProtectorClient`, or a fake in the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mllm_protector.prompts import is_safe_refusal

from .items import EvalItem
from .judges import Judge, Verdict

UNGUARDED = "unguarded"
GUARDED = "guarded"
SIDES = (UNGUARDED, GUARDED)


def is_fallback(text: str) -> bool:
    """Whether the guard's answer is its fixed safe refusal (a rewrite that was withheld)."""
    return is_safe_refusal(text)


# ---------------------------------------------------------------------------------------------------------------
# Results file


class ResultStore:
    """Append-only JSONL of result records; the last record of an id wins. A truncated last line (a run killed
    while writing) is ignored."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return records
        # errors="replace": a line cut inside a multi-byte character must fail as JSON (and be skipped), not as UTF-8
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    records[record["id"]] = record
        return records

    def reset(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, sort_keys=True)
        # A partial line left by a killed run would swallow this record: start on a fresh line.
        prefix = ""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                prefix = "" if f.read(1) == b"\n" else "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(prefix + line + "\n")
            f.flush()


# ---------------------------------------------------------------------------------------------------------------
# Request rate


class RateLimiter:
    """At most ``rate`` acquisitions per second, evenly spaced (None or 0: unbounded)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate < 0:
            raise ValueError(f"rate must be >= 0 requests per second, got {rate}")
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = self._clock()
            if self._next > now:
                await asyncio.sleep(self._next - now)
                now = self._clock()
            self._next = max(now, self._next) + self.interval


class LimitedClient:
    """Wraps a client so that every server call first waits for the rate limiter."""

    def __init__(self, client: Any, limiter: RateLimiter) -> None:
        self._client = client
        self._limiter = limiter

    async def generate(self, *args: Any, **kwargs: Any) -> str:
        await self._limiter.acquire()
        return await self._client.generate(*args, **kwargs)

    async def ask(self, *args: Any, **kwargs: Any) -> Any:
        await self._limiter.acquire()
        return await self._client.ask(*args, **kwargs)

    async def score(self, *args: Any, **kwargs: Any) -> float:
        await self._limiter.acquire()
        return await self._client.score(*args, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# One item


def record_is_current(record: dict[str, Any] | None, item: EvalItem, max_tokens: int | None) -> bool:
    """Whether a stored record answers this item as asked now (same prompt, label, image and max_tokens)."""
    return (
        record is not None
        and not record.get("error")
        and record.get("prompt") == item.prompt
        and record.get("label") == item.label
        and record.get("image") == item.image_ref()
        and record.get("max_tokens") == max_tokens
        and isinstance(record.get(UNGUARDED), dict)
        and isinstance(record.get(GUARDED), dict)
    )


def missing_judges(record: dict[str, Any], judges: Sequence[Judge]) -> list[Judge]:
    """Judges without a decided verdict on both answers of ``record``, or whose stored verdict a differently set
    judge made (its label names its settings: the detector judge's threshold, a chat judge's model and URL)."""
    verdicts = record.get("verdicts") or {}
    out = []
    for judge in judges:
        entry = verdicts.get(judge.name) or {}
        stale = entry.get("judge") != judge.label
        if stale or any(not isinstance(entry.get(side), dict) or entry[side].get("harmful") is None for side in SIDES):
            out.append(judge)
    return out


async def _safe_judge(judge: Judge, question: str, answer: str) -> Verdict:
    try:
        return await judge.judge(question, answer)
    except Exception as e:  # a judge failure must not lose the answers: keep it, retry on resume
        return Verdict(None, None, f"error: {type(e).__name__}: {' '.join(str(e).split())[:200]}")


async def judge_record(record: dict[str, Any], question: str, judges: Sequence[Judge]) -> dict[str, Any]:
    """Add the verdicts of ``judges`` on both answers to ``record`` (same text is judged once per judge)."""
    verdicts = dict(record.get("verdicts") or {})
    texts = {UNGUARDED: record[UNGUARDED]["text"], GUARDED: record[GUARDED]["text"]}

    async def one(judge: Judge) -> tuple[str, dict[str, Any]]:
        cache: dict[str, Verdict] = {}
        out: dict[str, Any] = {"judge": judge.label}
        for side in SIDES:
            if texts[side] not in cache:
                cache[texts[side]] = await _safe_judge(judge, question, texts[side])
            out[side] = cache[texts[side]].to_dict()
        return judge.name, out

    for name, entry in await asyncio.gather(*(one(j) for j in judges)):
        verdicts[name] = entry
    return {**record, "verdicts": verdicts}


async def answer_item(client: Any, item: EvalItem, max_tokens: int | None) -> dict[str, Any]:
    """Ask ``mllm`` and ``protector`` concurrently; a record without verdicts (``error`` set on failure)."""
    record: dict[str, Any] = {**item.describe(), "max_tokens": max_tokens}

    async def timed(coro: Any) -> tuple[Any, float]:
        start = time.perf_counter()
        value = await coro
        return value, round(time.perf_counter() - start, 3)

    results = await asyncio.gather(
        timed(client.generate(item.prompt, item.image, max_tokens)),
        timed(client.ask(item.prompt, image=item.image, max_tokens=max_tokens, want_original=True)),
        return_exceptions=True,
    )
    errors = [f"{name}: {type(r).__name__}: {' '.join(str(r).split())[:300]}"
              for name, r in zip(("mllm", "protector"), results, strict=True) if isinstance(r, BaseException)]
    if errors:
        for r in results:
            if isinstance(r, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise r
        return {**record, "error": "; ".join(errors)}
    (text, t_bare), (answer, t_guard) = results  # type: ignore[misc]
    record[UNGUARDED] = {"text": text, "seconds": t_bare}
    record[GUARDED] = {
        "text": answer.text,
        "harm_score": float(answer.harm_score),
        "rewritten": bool(answer.rewritten),
        "original_text": answer.original_text,
        "fallback": is_fallback(answer.text),
        "seconds": t_guard,
    }
    return record


# ---------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class RunStats:
    total: int = 0
    answered: int = 0
    rejudged: int = 0
    skipped: int = 0
    errors: int = 0
    aborted: bool = False
    seconds: float = 0.0
    error_messages: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = (f"{self.total} items: {self.answered} answered, {self.rejudged} re-judged, {self.skipped} already "
                f"done, {self.errors} failed in {self.seconds:.1f} s")
        return text + (" (aborted: too many errors)" if self.aborted else "")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


async def run_eval(
    items: Sequence[EvalItem],
    client: Any,
    judges: Sequence[Judge],
    store: ResultStore,
    *,
    max_tokens: int | None = 64,
    concurrency: int = 2,
    rate: float | None = None,
    resume: bool = True,
    progress: bool = True,
    max_errors: int | None = 20,
) -> tuple[list[dict[str, Any]], RunStats]:
    """Evaluate ``items``; returns their records (in ``items`` order; failed items carry ``error``) and stats.

    ``judges`` that call the server should already wrap ``client`` the same way (see :class:`LimitedClient`); pass
    the limited client in both places to bound the whole request rate. ``max_errors``: stop starting new items
    after that many failures (the server is probably down); None never stops.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    started = time.perf_counter()
    if not resume:
        store.reset()
    stored = store.load()
    stats = RunStats(total=len(items))
    records: dict[str, dict[str, Any]] = {}
    todo: list[tuple[EvalItem, dict[str, Any] | None]] = []
    for item in items:
        record = stored.get(item.id)
        if record_is_current(record, item, max_tokens):
            if missing_judges(record, judges):
                todo.append((item, record))
            else:
                records[item.id] = record
                stats.skipped += 1
        else:
            todo.append((item, None))

    semaphore = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    bar = _progress(len(todo), progress)

    async def work(item: EvalItem, record: dict[str, Any] | None) -> None:
        async with semaphore:
            if stop.is_set():
                return
            if record is None:
                fresh = await answer_item(client, item, max_tokens)
                if fresh.get("error"):
                    stats.errors += 1
                    stats.error_messages.append(f"{item.id}: {fresh['error']}")
                    if max_errors is not None and stats.errors >= max_errors:
                        stop.set()
                else:
                    stats.answered += 1
                    fresh = await judge_record(fresh, item.judge_question, judges)
            else:
                stats.rejudged += 1
                fresh = await judge_record(record, item.judge_question, missing_judges(record, judges))
            fresh["time"] = _now()
            store.append(fresh)
            records[item.id] = fresh
            bar.update(1)

    try:
        await asyncio.gather(*(work(item, record) for item, record in todo))
    finally:
        bar.close()
    stats.aborted = stop.is_set()
    stats.seconds = time.perf_counter() - started
    return [records[item.id] for item in items if item.id in records], stats


class _PlainProgress:
    """Progress on stderr without tqdm: one line per 10% (or per item for short runs)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.step = max(1, total // 10)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done % self.step == 0 or self.done == self.total:
            elapsed = time.perf_counter() - self.start
            print(f"[eval-safety] {self.done}/{self.total} items, {elapsed:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoProgress()
    with contextlib.suppress(ImportError):
        from tqdm import tqdm

        return tqdm(total=total, unit="item", file=sys.stderr, desc="eval-safety", dynamic_ncols=True)
    return _PlainProgress(total)
