"""mllm-protector-eval-safety: attack success rate with and without MLLM-Protector, and benign retention.

    mllm-protector-eval-safety                                  # the built-in set against localhost:8001 (gRPC)
    mllm-protector-eval-safety ~/data/MM-SafetyBench --per-group 5 --image-type TYPO
    mllm-protector-eval-safety ~/data/FigStep redteam.jsonl --url triton.example:8001 --rate 4
    mllm-protector-eval-safety --report-only                    # rebuild the report from the stored results

Datasets: ``builtin`` (generated here), a folder in MM-SafetyBench layout (``processed_questions/``, ``imgs/``), a
folder in FigStep layout (``question/safebench.csv``, ``images/SafeBench/``) or a ``.jsonl`` file of ``{image,
prompt, label}``. Results go to ``--out`` (``results.jsonl``, resumed by the next run; ``summary.json``,
``report.md``, ``asr_<judge>.png``, ``benign_harm_scores.png``); the markdown report is printed on stdout.

Judges: ``refusal-string`` always, ``harm_detector`` (the project's own, not independent) unless
``--no-detector-judge``, and an external OpenAI-compatible chat judge only when ``--judge-url`` is given (its API key
is read from the environment variable named by ``--judge-api-key-env``, never from the command line).

Exit status: 0 when every item was answered, 1 when some failed (or the run stopped after ``--max-errors``),
2 for a bad argument or an unreadable dataset, 3 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .builtin import BUILTIN, builtin_items
from .items import EvalItem, check_unique_ids, select
from .judges import (
    CHAT_STYLES,
    INSTRUCT,
    REFUSAL_STRINGS,
    ChatJudge,
    DetectorJudge,
    RefusalJudge,
    describe,
    read_refusal_strings,
    server_harm_threshold,
)
from .readers import DatasetError, read_dataset
from .report import markdown, summarize, write_reports
from .runner import LimitedClient, RateLimiter, ResultStore, run_eval

DEFAULT_OUT = "artifacts/eval-safety"
DEFAULT_API_KEY_ENV = "SAFETY_JUDGE_API_KEY"
RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"

log = logging.getLogger("mllm_protector.safety_eval")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mllm-protector-eval-safety",
        description="Attack success rate with and without MLLM-Protector on MM-SafetyBench, FigStep, JSONL sets or "
        "the built-in set; benign retention; markdown, JSON and PNG reports.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("datasets", nargs="*", default=[BUILTIN],
                   help="'builtin', an MM-SafetyBench or FigStep folder, or a .jsonl file")
    server = p.add_argument_group("server")
    server.add_argument("--url", default=None, help="Triton host:port (default localhost:8001 for gRPC, 8000 HTTP)")
    server.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    server.add_argument("--timeout", type=float, default=600.0, help="seconds per request (CPU queues are slow)")
    server.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server to be ready")
    server.add_argument("--max-tokens", type=int, default=64, help="answer length (both models)")
    server.add_argument("--concurrency", type=int, default=2, help="items in flight (each makes 2 requests)")
    server.add_argument("--rate", type=float, default=8.0, help="requests per second to the server (0: unbounded)")
    server.add_argument("--max-errors", type=int, default=20, help="stop after this many failed items (0: never)")
    sel = p.add_argument_group("selection")
    sel.add_argument("--limit", type=int, default=None,
                     help="at most N items, balanced: labels alternate, scenarios take turns")
    sel.add_argument("--per-group", type=int, default=None, help="at most N items per scenario and image type")
    sel.add_argument("--scenario", action="append", default=[], help="only this scenario (name or number; repeat)")
    sel.add_argument("--image-type", action="append", default=[],
                     help="only this image type (SD, TYPO, SD_TYPO, FigStep, typo-list, photo, text; repeat)")
    sel.add_argument("--figstep-csv", default=None, help="SafeBench CSV under question/ (default safebench.csv)")
    judges = p.add_argument_group("judges")
    judges.add_argument("--refusal-strings", default=None, help="file of refusal phrases, one per line")
    judges.add_argument("--no-detector-judge", action="store_true", help="leave out the project's harm detector")
    judges.add_argument("--threshold", type=float, default=None,
                        help="detector judge threshold (default: the served protector's harm_threshold)")
    judges.add_argument("--judge-url", default=None,
                        help="OpenAI-compatible base URL of an external judge, e.g. http://host:8000/v1")
    judges.add_argument("--judge-model", default=None, help="model name for the external judge")
    judges.add_argument("--judge-style", choices=CHAT_STYLES, default=INSTRUCT)
    judges.add_argument("--judge-api-key-env", default=DEFAULT_API_KEY_ENV,
                        help="environment variable holding the external judge's API key (optional)")
    judges.add_argument("--judge-timeout", type=float, default=60.0)
    out = p.add_argument_group("output")
    out.add_argument("--out", default=DEFAULT_OUT, help="folder for results and reports")
    out.add_argument("--no-resume", action="store_true", help="start afresh (empties results.jsonl)")
    out.add_argument("--report-only", action="store_true", help="no server: report the stored results")
    out.add_argument("--no-charts", action="store_true")
    out.add_argument("--no-progress", action="store_true")
    out.add_argument("--json", action="store_true", help="print the JSON summary instead of the markdown")
    return p


def load_items(args: argparse.Namespace) -> list[EvalItem]:
    items: list[EvalItem] = []
    for spec in args.datasets:
        if spec == BUILTIN:
            items += builtin_items()
        else:
            items += read_dataset(Path(spec).expanduser(), image_types=args.image_type or None,
                                  figstep_csv=args.figstep_csv)
    check_unique_ids(items)
    return select(items, limit=args.limit, per_group=args.per_group, scenarios=args.scenario,
                  image_types=args.image_type)


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.max_tokens < 1:
        p.error("--max-tokens must be at least 1")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if args.rate < 0:
        p.error("--rate must be >= 0")
    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        p.error("--threshold must be in (0, 1]")
    if args.judge_url and not args.judge_model:
        p.error("--judge-url needs --judge-model")
    if args.judge_model and not args.judge_url:
        p.error("--judge-model needs --judge-url")


def _local_threshold() -> float | None:
    """The threshold in this checkout's protector CPU config (when the server is this checkout's)."""
    try:
        from mllm_protector.server import project_root
        from mllm_protector.triton_params import parse_config_parameters

        config = project_root() / "model_repository" / "protector" / "configs" / "cpu.pbtxt"
        return float(parse_config_parameters(config)["harm_threshold"])
    except Exception:
        return None


async def _evaluate(args: argparse.Namespace, items: list[EvalItem], out: Path) -> tuple[dict[str, Any], Any]:
    from mllm_protector.client import AsyncProtectorClient, ProtectorConnectionError

    refusal = RefusalJudge(read_refusal_strings(args.refusal_strings) if args.refusal_strings else REFUSAL_STRINGS)
    async with AsyncProtectorClient(args.url, protocol=args.protocol, timeout=args.timeout) as client:
        try:
            await client.wait_ready(timeout=args.wait)
        except ProtectorConnectionError as e:
            raise ConnectionError(str(e)) from e
        threshold, source = args.threshold, "--threshold"
        if threshold is None:
            threshold, source = await server_harm_threshold(client.url, args.protocol), "server config"
        if threshold is None:
            threshold, source = _local_threshold(), "local configs/cpu.pbtxt"
        if threshold is None:
            threshold, source = 0.5, "default"
        limited = LimitedClient(client, RateLimiter(args.rate or None))
        judges: list[Any] = [refusal]
        if not args.no_detector_judge:
            judges.append(DetectorJudge(limited, threshold, source))
        if args.judge_url:
            judges.append(ChatJudge(args.judge_url, args.judge_model, api_key=os.environ.get(args.judge_api_key_env),
                                    style=args.judge_style, timeout=args.judge_timeout))
        config = {"url": f"{client.url} ({args.protocol})", "datasets": ", ".join(args.datasets),
                  "max_tokens": args.max_tokens, "threshold": f"{threshold:g} ({source})",
                  "concurrency": args.concurrency, "rate": args.rate or None}
        (out / RUN_FILE).write_text(json.dumps({"judges": describe(judges), "threshold": threshold,
                                                "config": config}, indent=2) + "\n", encoding="utf-8")
        records, stats = await run_eval(
            items, limited, judges, ResultStore(out / RESULTS_FILE), max_tokens=args.max_tokens,
            concurrency=args.concurrency, resume=not args.no_resume, progress=not args.no_progress,
            max_errors=args.max_errors or None,
        )
    return summarize(records, describe(judges), config, threshold, selected=len(items)), stats


def _report_only(items: list[EvalItem], out: Path) -> dict[str, Any]:
    run_file = out / RUN_FILE
    if not run_file.exists():
        raise FileNotFoundError(f"{run_file} not found: run an evaluation into {out} first")
    run = json.loads(run_file.read_text(encoding="utf-8"))
    stored = ResultStore(out / RESULTS_FILE).load()
    records = [stored[item.id] for item in items if item.id in stored]
    return summarize(records, run["judges"], run.get("config"), run.get("threshold"), selected=len(items))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    logging.basicConfig(level=logging.WARNING, format="[eval-safety] %(message)s", stream=sys.stderr)
    try:
        items = load_items(args)
    except (DatasetError, ValueError) as e:
        print(f"eval-safety: {e}", file=sys.stderr)
        return 2
    if not items:
        print("eval-safety: no items selected", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = None
    try:
        if args.report_only:
            summary = _report_only(items, out)
        else:
            print(f"[eval-safety] {len(items)} items -> {out}", file=sys.stderr, flush=True)
            summary, stats = asyncio.run(_evaluate(args, items, out))
    except FileNotFoundError as e:
        print(f"eval-safety: {e}", file=sys.stderr)
        return 2
    except ConnectionError as e:
        print(f"eval-safety: {e}", file=sys.stderr)
        return 3
    paths = write_reports(summary, out, charts=not args.no_charts)
    print(json.dumps(summary, indent=2) if args.json else markdown(summary))
    if stats is not None:
        print(f"[eval-safety] {stats.line()}", file=sys.stderr)
        for message in stats.error_messages[:5]:
            print(f"[eval-safety] failed: {message}", file=sys.stderr)
    print("[eval-safety] wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    counts = summary["counts"]
    failed = counts["errors"] or counts["not_run"] or (stats is not None and (stats.aborted or stats.errors))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
