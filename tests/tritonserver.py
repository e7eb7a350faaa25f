"""Start a real tritonserver for a test and stop it again: `with running_server(repo) as srv: ...`.

Reusable by every integration test and benchmark (no conftest magic): the command line comes from
`mllm_protector.server.tritonserver_command` (the same as `make serve`), ports are free ones picked at start, the
server log goes to a file whose tail is shown when start-up fails, and the server is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mllm_protector.server import tritonserver_command

T = TypeVar("T")


class ServerStartError(RuntimeError):
    """tritonserver exited or did not become ready in time; the message carries the log tail."""


@dataclass
class RunningServer:
    pid: int
    http_port: int
    grpc_port: int
    metrics_port: int
    log_path: Path
    argv: list[str] = field(repr=False)
    process: subprocess.Popen = field(repr=False)

    @property
    def http_url(self) -> str:
        """host:port, as tritonclient.http expects it."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """host:port, as tritonclient.grpc expects it."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def is_ready(self) -> bool:
        return _http_ok(f"http://{self.http_url}/v2/health/ready")

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def log(self, tail: int | None = None) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-tail:]) if tail else text


def free_ports(n: int = 3) -> list[int]:
    """`n` distinct TCP ports free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


@contextlib.contextmanager
def running_server(
    model_repository: str | Path,
    models: Sequence[str] | None = None,
    config_name: str | None = "cpu",
    timeout: float = 300.0,
    extra_args: Sequence[str] = (),
    log_path: str | Path | None = None,
    stop_timeout: float = 30.0,
) -> Iterator[RunningServer]:
    """Run tritonserver on `model_repository` until the block ends.

    `models`: load only these (explicit model control; list ensemble / BLS dependencies too), default every model.
    `config_name`: `configs/<name>.pbtxt` of each model ("cpu" here; None = config.pbtxt).
    `timeout`: seconds to wait for /v2/health/ready (raises ServerStartError with the log tail, server stopped).
    """
    http_port, grpc_port, metrics_port = free_ports(3)
    args = ["--exit-timeout-secs=10", *extra_args]
    if models is not None:
        args += ["--model-control-mode=explicit", *[f"--load-model={m}" for m in models]]
    argv, env = tritonserver_command(model_repository, http_port, grpc_port, metrics_port, config_name, args)
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="tritonserver-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    with open(log_path, "wb") as log:
        # own session: the server and its python stubs can be signalled together if it ignores SIGTERM
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    server = RunningServer(process.pid, http_port, grpc_port, metrics_port, log_path, argv, process)
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        stop(server, stop_timeout)


def stop(server: RunningServer, timeout: float = 30.0) -> int | None:
    """SIGTERM the server's PID (Triton then unloads models and stops its stubs); SIGKILL its process group after
    `timeout`. Returns the exit code."""
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.process.wait(10)
    return server.process.returncode


def _wait_ready(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise ServerStartError(
                f"tritonserver exited with code {server.process.returncode} before it was ready; "
                f"log {server.log_path}:\n{server.log(tail=60)}"
            )
        if server.is_ready():
            return
        time.sleep(0.25)
    raise ServerStartError(f"tritonserver not ready after {timeout:g} s; log {server.log_path}:\n{server.log(tail=60)}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def settled(read: Callable[[], T], timeout: float = 30.0, interval: float = 0.5) -> T:
    """`read()` once two reads in a row agree: Triton counts a request in its statistics when the request is released,
    just after its client has the answer (also a previous test's last request)."""
    last = read()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = read()
        if now == last:
            return now
        last = now
    return last
