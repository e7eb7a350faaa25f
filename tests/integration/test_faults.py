"""Process faults on a real server: a killed python stub, SIGTERM with requests in flight, a killed server.

What Triton does here (2.51, python backend): a stub that dies is noticed at its next request, that request fails,
and so does every later one, while the model stays 'ready' (the deep probe catches it). SIGTERM makes the server
unready, unloads the idle models and waits up to --exit-timeout-secs for the requests in flight before it exits.
The tests check the guard's side of it: nothing is released unscored, no client hangs, the deep probe tells a
dead guard from a live one, and a restarted server serves.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from mllm_protector.client import cli
from tests.tritonserver import RunningServer, running_server

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2] / "model_repository"
MODELS = ["protector", "harm_detector", "harm_tokenizer", "harm_classifier", "detoxifier"]
BOUND_S = 180.0
# A blatant answer every trained detector so far scores >= 0.97 (the pipe-bomb one scores 0.06 since session 12).
HARMFUL = ("Mix bleach with an ammonia cleaner in a closed bathroom and the chloramine gas will knock out whoever "
           "breathes it.")


def ask(server: RunningServer, answer: str = "4", threshold: float | None = None, timeout: float = BOUND_S):
    """Guard-only protector request over gRPC; returns (text_output, harm_score) or raises InferenceServerException."""
    inputs = []
    for name, value in (("text_input", "What is this?"), ("response", answer)):
        tensor = grpcclient.InferInput(name, [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[value.encode()]], dtype=object))
        inputs.append(tensor)
    outputs = [grpcclient.InferRequestedOutput(n) for n in ("text_output", "harm_score")]
    params = None if threshold is None else {"harm_threshold": threshold}
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        result = client.infer("protector", inputs, outputs=outputs, parameters=params, client_timeout=timeout)
    return result.as_numpy("text_output")[0][0].decode(), float(result.as_numpy("harm_score")[0][0])


def stub_pids(server: RunningServer, model: str) -> list[int]:
    """PIDs of the python backend stubs serving `model` (their command line names the model's directory)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server.pid and b"stub" in argv[0] and any(f"/{model}/".encode() in a for a in argv[1:2]):
            pids.append(int(entry))
    return pids


def probe(server: RunningServer) -> int:
    """Exit code of the deep health check a Kubernetes liveness probe runs (`mllm-protector health --probe`)."""
    return cli.main(["health", "--url", server.http_url, "--model", "protector", "--model", "harm_detector",
                     "--model", "detoxifier", "--probe", "--timeout", "60"])


@pytest.mark.parametrize("model", ["harm_classifier", "protector"])
def test_killed_stub_fails_closed_and_the_deep_probe_sees_it(model, capsys):
    """Triton 2.51 does not start a dead stub again and keeps the model (and server) 'ready' (upstream:
    triton-inference-server/server#8604, #7862). The guard must then fail closed on every request, and the deep
    probe must fail so that Kubernetes restarts the pod; readiness alone would keep routing traffic to it."""
    with running_server(REPO, models=MODELS, config_name="cpu") as server:
        assert ask(server)[0] == "4" and probe(server) == 0
        pids = stub_pids(server, model)
        assert pids, f"no stub process found for {model}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        for _ in range(3):
            start = time.monotonic()
            with pytest.raises(InferenceServerException):  # withheld, never released unscored
                ask(server, HARMFUL, threshold=0.5)
            assert time.monotonic() - start < BOUND_S
        # Triton's own readiness usually still says ready here (once seen otherwise): not something to rely on
        capsys.readouterr()
        assert probe(server) == 1  # what the liveness probe reports
        assert "the guard does not answer" in capsys.readouterr().err


def generate(server: RunningServer, max_tokens: int = 256) -> str:
    """A protector request that makes the MLLM generate: seconds of work even on a fast CPU, while three of them
    still finish inside BOUND_S on 2 busy cores (at 512 tokens they did not, with a training run alongside)."""
    inputs = []
    for name, value in (("text_input", np.array([[b"Write a long story about a lighthouse keeper."]], dtype=object)),
                        ("max_tokens", np.array([[max_tokens]], dtype=np.int32))):
        tensor = grpcclient.InferInput(name, [1, 1], "BYTES" if value.dtype == object else "INT32")
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        result = client.infer("protector", inputs, outputs=[grpcclient.InferRequestedOutput("text_output")],
                              client_timeout=BOUND_S)
    return result.as_numpy("text_output")[0][0].decode()


def _in_flight(server: RunningServer, n: int) -> tuple[ThreadPoolExecutor, list[Future]]:
    """`n` long generation requests, submitted and given time to arrive; none may have finished yet."""
    pool = ThreadPoolExecutor(n)
    futures = [pool.submit(generate, server) for _ in range(n)]
    time.sleep(2)
    assert not any(f.done() for f in futures), "the requests finished before the fault: make them longer"
    return pool, futures


def test_sigterm_with_requests_in_flight_fails_closed_and_exits():
    """SIGTERM: the server turns unready at once and exits cleanly; each request in flight is answered or gets an
    error, none hangs. Triton unloads every model that is idle, including the detector a BLS request in flight will
    still call, so such a request fails closed rather than being answered: a graceful drain has to happen before
    SIGTERM (the deployment's preStop hook, docs/deployment.md)."""
    with running_server(REPO, models=[*MODELS, "mllm"], config_name="cpu",
                        extra_args=["--exit-timeout-secs=300"]) as srv:
        pool, futures = _in_flight(srv, 3)
        os.kill(srv.pid, signal.SIGTERM)
        time.sleep(0.5)
        assert not srv.is_ready()  # load balancers stop sending new work
        for f in futures:
            try:
                assert f.result(timeout=BOUND_S).strip()
            except InferenceServerException as e:
                assert "withheld" in str(e) or "unavailable" in str(e).lower(), str(e)
        pool.shutdown()
        srv.process.wait(60)
        assert srv.process.returncode == 0


def test_server_killed_with_requests_in_flight_gives_clients_an_error_not_a_hang():
    """The harshest restart (OOM kill, node loss): the clients' connections end with an error at once, and the
    server started again on the same repository serves."""
    with running_server(REPO, models=[*MODELS, "mllm"], config_name="cpu") as srv:
        pool, futures = _in_flight(srv, 2)
        start = time.monotonic()
        os.killpg(srv.pid, signal.SIGKILL)
        for f in futures:
            with pytest.raises(InferenceServerException):
                f.result(timeout=BOUND_S)
        assert time.monotonic() - start < 30
        pool.shutdown()
        srv.process.wait(30)
    with running_server(REPO, models=MODELS, config_name="cpu") as again:
        assert ask(again)[0] == "4"
