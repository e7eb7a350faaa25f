"""The ``mllm-protector`` console command (also ``python -m mllm_protector.client``).

    mllm-protector ask [--url HOST:PORT] [--protocol http|grpc] [--timeout S] [--image FILE] [--response TEXT]
                       [--max-tokens N] [--threshold X] [--original] [--json] [PROMPT]
    mllm-protector health [--url HOST:PORT] [--protocol http|grpc] [--timeout S] [--json] [--model NAME]... [--probe]

``--url`` defaults to localhost:8000 for HTTP and localhost:8001 for gRPC. ``PROMPT`` ``-`` reads the prompt from
stdin; it may be left out when an image or a response is given. Exit codes: 0 success; 1 server or connection error
(and ``health`` when something is not ready); 2 usage error (bad option, unreadable image file, nothing to ask).
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from .api import DEFAULT_PORTS, DEFAULT_TIMEOUT, PROTOCOLS, ProtectedAnswer, ProtectorClient, ProtectorError, is_healthy

PROG = "mllm-protector"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line mistake found after parsing (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=None,
        help=f"server host:port (default: localhost:{DEFAULT_PORTS['http']} for http, "
        f"localhost:{DEFAULT_PORTS['grpc']} for grpc)",
    )
    group.add_argument("--protocol", choices=PROTOCOLS, default="http", help="transport (default: http)")
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds to wait for the server per call (default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    parser = _Parser(
        prog=PROG,
        description="Client for MLLM-Protector on Triton: ask the guarded multimodal LLM, check server health.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ask = commands.add_parser(
        "ask",
        parents=[connection],
        help="ask the guarded MLLM (model 'protector')",
        description="Send a prompt (and optionally an image) through the MLLM-Protector pipeline. Prints the safe "
        "answer, the harm score of the original answer and whether it was rewritten.",
    )
    ask.add_argument("prompt", metavar="PROMPT", nargs="?", default="",
                     help="the prompt text ('-' reads it from stdin); may be left out with --image or --response")
    ask.add_argument("--image", metavar="FILE", help="an image file (PNG, JPEG or WebP) sent with the prompt")
    ask.add_argument(
        "--response",
        metavar="TEXT",
        help="guard-only mode: guard this answer (from any MLLM) instead of generating one",
    )
    ask.add_argument("--max-tokens", type=_positive_int, metavar="N", help="generation limit of the MLLM")
    ask.add_argument(
        "--threshold", type=_finite_float, metavar="X",
        help="a stricter harm threshold for this request, at most the server's (server default if unset)",
    )
    ask.add_argument("--original", action="store_true", help="also print the original (unguarded) answer")

    health = commands.add_parser(
        "health",
        parents=[connection],
        help="show server liveness/readiness and each model's readiness",
        description="Exit code 0 when the server and all models are ready (and, with --probe, the guard answers), "
        "1 otherwise.",
    )
    health.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help="check this model's readiness (repeatable; default: protector, mllm, harm_detector, detoxifier; "
        "a guard-only deployment leaves out mllm)",
    )
    health.add_argument(
        "--probe",
        action="store_true",
        help="also send one guard-only request through protector and harm_detector: Triton 2.51 keeps a model "
        "'ready' after its python stub died, so readiness alone misses a guard that can no longer score",
    )
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("mllm-protector")
    except Exception:  # not installed as a distribution
        return "unknown"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------------------------
# Output formatting


def format_answer(answer: ProtectedAnswer, as_json: bool = False) -> str:
    """What ``ask`` prints: the answer text, then the harm score and whether it was rewritten (or one JSON object)."""
    if as_json:
        return json.dumps(answer.to_dict(), ensure_ascii=False)
    lines = [
        answer.text,
        "",
        f"harm_score: {answer.harm_score:.4f}",
        f"rewritten: {'yes' if answer.rewritten else 'no'}",
    ]
    if answer.harm_category is not None:
        lines.append(f"harm_category: {answer.harm_category} ({answer.harm_categories[answer.harm_category]:.4f})")
    if answer.original_text is not None:
        lines += ["original_text:", answer.original_text]
    return "\n".join(lines)


def format_health(health: Mapping[str, Any], as_json: bool = False) -> str:
    """What ``health`` prints: server state and one line per model (or one JSON object)."""
    if as_json:
        return json.dumps(dict(health), ensure_ascii=False)

    def yes(flag: object) -> str:
        return "yes" if flag else "no"

    lines = [
        f"server: {health['url']} ({health['protocol']})"
        + (f", Triton {health['server_version']}" if health.get("server_version") else ""),
        f"live: {yes(health['live'])}",
        f"ready: {yes(health['ready'])}",
    ]
    models = health.get("models", {})
    width = max((len(name) for name in models), default=0)
    for name, ready in models.items():
        lines.append(f"model {name:<{width}}  {'ready' if ready else 'NOT READY'}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Commands


def _read_prompt(prompt: str) -> str:
    if prompt != "-":
        return prompt
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


def _read_image(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"cannot read image {path!r}: {e.strerror or e}") from None


def _connect(args: argparse.Namespace) -> ProtectorClient:
    try:
        return ProtectorClient(args.url, args.protocol, timeout=args.timeout)
    except ValueError as e:  # e.g. a malformed --url
        raise UsageError(str(e)) from None


def _cmd_ask(args: argparse.Namespace) -> int:
    prompt = _read_prompt(args.prompt)
    if not prompt.strip() and args.image is None and args.response is None:
        raise UsageError("nothing to ask: give a PROMPT, an --image or a --response")
    image = _read_image(args.image) if args.image is not None else None
    with _connect(args) as client:
        answer = client.ask(
            prompt,
            image=image,
            response=args.response,
            max_tokens=args.max_tokens,
            threshold=args.threshold,
            want_original=args.original,
        )
    print(format_answer(answer, args.json))
    return EXIT_OK


PROBE_PROMPT, PROBE_ANSWER = "health probe", "OK"


def _cmd_health(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        health = client.health(args.models) if args.models else client.health()
        if args.probe and is_healthy(health):
            try:
                # at the served threshold (a request may not loosen it): "OK" scores ~0.002, so only a guard
                # that cannot score or answer fails the probe
                answer = client.ask(PROBE_PROMPT, response=PROBE_ANSWER)
                health["probe"] = answer.text == PROBE_ANSWER
            except ProtectorError as e:
                health["probe"] = False
                health["probe_error"] = str(e)
    print(format_health(health, args.json))
    if is_healthy(health) and health.get("probe", True):
        return EXIT_OK
    waiting = [name for name, ready in health["models"].items() if not ready]
    reason = "server not live" if not health["live"] else "server not ready" if not health["ready"] else ""
    reason = reason or ("models not ready: " + ", ".join(waiting) if waiting else "")
    reason = reason or "the guard does not answer: " + health.get("probe_error", "wrong answer to the probe")
    print(f"{PROG}: {reason}", file=sys.stderr)
    return EXIT_ERROR


_COMMANDS = {"ask": _cmd_ask, "health": _cmd_health}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help / --version (0) or a usage error (2, message already printed)
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except UsageError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except ProtectorError as e:
        print(f"{PROG}: error: {_one_line(e) or type(e).__name__}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mllm-protector ask ... | head -1`
        return EXIT_ERROR
    except Exception as e:  # never a traceback
        print(f"{PROG}: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
