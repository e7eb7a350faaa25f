"""`make serve`: the protected pipeline on a real tritonserver, in the foreground, on 127.0.0.1.

The server process replaces this one (exec), so Ctrl-C / SIGTERM reach tritonserver directly and it shuts down
cleanly, finishing in-flight requests first.
"""

from __future__ import annotations

import argparse
import os
import sys

from mllm_protector.server import (
    DEFAULT_GRPC_PORT,
    DEFAULT_HTTP_PORT,
    DEFAULT_METRICS_PORT,
    project_root,
    tritonserver_command,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", default=str(project_root() / "model_repository"))
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT)
    parser.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT)
    parser.add_argument("--config-name", default="cpu", help="configs/<name>.pbtxt of each model ('' = config.pbtxt)")
    args, extra = parser.parse_known_args(argv)
    cmd, env = tritonserver_command(
        args.model_repository, args.http_port, args.grpc_port, args.metrics_port, args.config_name or None, extra
    )
    print(
        f"[serve] tritonserver on 127.0.0.1: HTTP {args.http_port}, gRPC {args.grpc_port}, metrics "
        f"{args.metrics_port}; ready when /v2/health/ready answers 200. Ctrl-C stops it.",
        file=sys.stderr,
        flush=True,
    )
    os.execve(cmd[0], cmd, env)
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
