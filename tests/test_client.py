"""Unit tests of mllm_protector.client: tensors, request building, result parsing, error translation, the CLI.

No server: the tritonclient object inside a client is replaced by a fake that records the calls, and the error path
runs against a closed local port.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc
import tritonclient.http
from tritonclient.utils import InferenceServerException

from mllm_protector.client import (
    MODELS,
    AsyncProtectorClient,
    ProtectedAnswer,
    ProtectorClient,
    ProtectorConnectionError,
    ProtectorError,
    cli,
    detoxifier_request,
    harm_detector_request,
    is_healthy,
    mllm_request,
    normalize_url,
    protector_request,
    tensors,
)
from mllm_protector.detector_text import HARM_CATEGORIES

PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


# ---------------------------------------------------------------------------------------------------------------
# Tensors and requests


def _value(spec: tensors.InferSpec, name: str) -> Any:
    tensor = spec.input(name)
    assert tensor is not None, name
    return tensor.data[0, 0]


def test_protector_request_minimal_sends_only_text_input():
    spec = protector_request("What is in the picture? ü")
    assert spec.model == "protector"
    assert spec.input_names == ("text_input",)
    tensor = spec.inputs[0]
    assert tensor.datatype == "BYTES"
    assert tensor.shape == [1, 1]
    assert tensor.data.dtype == np.object_
    assert tensor.data[0, 0] == "What is in the picture? ü".encode()
    assert spec.outputs == ("text_output", "harm_score", "harm_categories", "rewritten")
    assert dict(spec.parameters) == {}


def test_protector_request_all_inputs(tmp_path):
    image_file = tmp_path / "sign.png"
    image_file.write_bytes(PNG)
    spec = protector_request("q", image=image_file, response="an answer", max_tokens=64, threshold=0.3)
    assert spec.input_names == ("text_input", "image", "response", "max_tokens")
    by_name = {t.name: t for t in spec.inputs}
    assert all(t.shape == [1, 1] for t in spec.inputs)
    assert by_name["image"].datatype == "BYTES" and by_name["image"].data[0, 0] == PNG
    assert by_name["response"].datatype == "BYTES" and by_name["response"].data[0, 0] == b"an answer"
    assert by_name["max_tokens"].datatype == "INT32" and by_name["max_tokens"].data.dtype == np.int32
    assert by_name["max_tokens"].data[0, 0] == 64
    assert dict(spec.parameters) == {"harm_threshold": 0.3}
    assert isinstance(spec.parameters["harm_threshold"], float)


@pytest.mark.parametrize("image", [PNG, bytearray(PNG), memoryview(PNG)])
def test_image_bytes_like_is_sent_as_is(image):
    assert _value(protector_request("q", image=image), "image") == PNG


def test_image_path_as_str(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(PNG)
    assert _value(protector_request("q", image=str(path)), "image") == PNG


@pytest.mark.parametrize(
    ("kwargs", "present"),
    [
        ({"image": PNG}, "image"),
        ({"response": "r"}, "response"),
        ({"max_tokens": 5}, "max_tokens"),
    ],
)
def test_each_optional_input_only_when_given(kwargs, present):
    spec = protector_request("q", **kwargs)
    assert spec.input_names == ("text_input", present)


def test_original_text_requested_only_when_asked():
    assert "original_text" not in protector_request("q").outputs
    # never all four: the server reads "all four" as "none named" and then withholds original_text
    assert protector_request("q", want_original=True).outputs == ("text_output", "harm_score", "harm_categories",
                                                                  "original_text")


def test_bytes_text_is_sent_raw():
    spec = protector_request(b"\xff\xfe not utf-8", response=b"\xc3")
    assert _value(spec, "text_input") == b"\xff\xfe not utf-8"
    assert _value(spec, "response") == b"\xc3"


def test_empty_strings_are_sent_not_dropped():
    # The server decides that empty text is an error; the client must not silently omit it.
    spec = protector_request("", response="")
    assert spec.input_names == ("text_input", "response")
    assert _value(spec, "response") == b""


@pytest.mark.parametrize("bad", [0, -1, 2**31, True, 1.5, "7"])
def test_bad_max_tokens_rejected(bad):
    with pytest.raises(ValueError, match="max_tokens"):
        protector_request("q", max_tokens=bad)


def test_max_tokens_accepts_numpy_integer():
    assert _value(protector_request("q", max_tokens=np.int64(9)), "max_tokens") == 9


@pytest.mark.parametrize("bad", [math.nan, math.inf, "abc", True])
def test_bad_threshold_rejected(bad):
    with pytest.raises(ValueError, match="threshold"):
        protector_request("q", threshold=bad)


def test_threshold_is_passed_as_float():
    assert protector_request("q", threshold=1).parameters == {"harm_threshold": 1.0}


def test_missing_image_file_and_wrong_types():
    with pytest.raises(FileNotFoundError):
        protector_request("q", image="/nonexistent/image.png")
    with pytest.raises(TypeError):
        protector_request("q", image=12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        protector_request(None)  # type: ignore[arg-type]


def test_mllm_request():
    spec = mllm_request("describe", image=PNG, max_tokens=3)
    assert spec.model == "mllm"
    assert spec.input_names == ("text_input", "image", "max_tokens")
    assert spec.outputs == ("text_output",)
    assert dict(spec.parameters) == {}
    assert mllm_request("describe").input_names == ("text_input",)


def test_harm_detector_and_detoxifier_requests():
    spec = harm_detector_request("", "some answer")
    assert (spec.model, spec.input_names, spec.outputs) == (
        "harm_detector",
        ("text_input", "response"),
        ("harm_score",),
    )
    assert _value(spec, "text_input") == b""
    spec = detoxifier_request("q", "bad answer")
    assert (spec.model, spec.input_names, spec.outputs) == ("detoxifier", ("text_input", "response"), ("text_output",))


def test_without_input():
    spec = protector_request("q", response="r").without_input("text_input")
    assert spec.input_names == ("response",)
    assert spec.model == "protector" and spec.outputs == ("text_output", "harm_score", "harm_categories", "rewritten")


@pytest.mark.parametrize("module", [tritonclient.http, tritonclient.grpc], ids=["http", "grpc"])
def test_to_triton(module):
    spec = protector_request("q", image=PNG, max_tokens=4, want_original=True)
    inputs, outputs = tensors.to_triton(spec, module)
    assert [(i.name(), i.datatype(), i.shape()) for i in inputs] == [
        ("text_input", "BYTES", [1, 1]),
        ("image", "BYTES", [1, 1]),
        ("max_tokens", "INT32", [1, 1]),
    ]
    assert [o.name() for o in outputs] == ["text_output", "harm_score", "harm_categories", "original_text"]


# ---------------------------------------------------------------------------------------------------------------
# Clients, with the tritonclient object replaced by a fake


class FakeResult:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def as_numpy(self, name: str) -> np.ndarray | None:
        return self.arrays.get(name)


# 0.875 split over the hazard categories, cyber on top
CATEGORY_SCORES = [0.0, 0.125, 0.625, 0.0, 0.0, 0.0, 0.0, 0.0, 0.125, 0.0, 0.0]


def protector_outputs(original: bool = False) -> dict[str, np.ndarray]:
    arrays = {
        "text_output": np.array([["I can't help with that. ü".encode()]], dtype=np.object_),
        "harm_score": np.array([[0.875]], dtype=np.float32),
        "rewritten": np.array([[True]], dtype=bool),
        "harm_categories": np.array([CATEGORY_SCORES], dtype=np.float32),
    }
    if original:
        arrays["original_text"] = np.array([[b"harmful text"]], dtype=np.object_)
    return arrays


class FakeTriton:
    """Records infer calls; answers with `arrays`, or raises `error`."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None, error: BaseException | None = None) -> None:
        self.arrays = arrays or {}
        self.error = error
        self.calls: list[dict[str, Any]] = []
        self.model_ready: dict[str, Any] = {}
        self.metadata: Any = {"name": "triton", "version": "2.51.0", "extensions": []}
        self.closed = False

    def infer(self, model_name, inputs, outputs=None, parameters=None, **kwargs):
        self.calls.append(
            {
                "model": model_name,
                "inputs": {i.name(): (i.datatype(), i.shape()) for i in inputs},
                "outputs": [o.name() for o in outputs],
                "parameters": parameters,
                "kwargs": kwargs,
            }
        )
        if self.error is not None:
            raise self.error
        return FakeResult(self.arrays)

    def is_server_live(self, **kwargs):
        if self.error is not None:
            raise self.error
        return True

    def is_server_ready(self, **kwargs):
        return True

    def get_server_metadata(self, **kwargs):
        self.metadata_kwargs = kwargs
        if isinstance(self.metadata, BaseException):
            raise self.metadata
        return self.metadata

    def is_model_ready(self, name, **kwargs):
        state = self.model_ready.get(name, True)
        if isinstance(state, BaseException):
            raise state
        return state

    def close(self):
        self.closed = True


class AsyncFakeTriton(FakeTriton):
    async def infer(self, *args, **kwargs):  # type: ignore[override]
        return FakeTriton.infer(self, *args, **kwargs)

    async def is_server_live(self, **kwargs):  # type: ignore[override]
        return FakeTriton.is_server_live(self, **kwargs)

    async def is_server_ready(self, **kwargs):  # type: ignore[override]
        return True

    async def get_server_metadata(self, **kwargs):  # type: ignore[override]
        return FakeTriton.get_server_metadata(self, **kwargs)

    async def is_model_ready(self, name, **kwargs):  # type: ignore[override]
        return FakeTriton.is_model_ready(self, name, **kwargs)

    async def close(self):  # type: ignore[override]
        self.closed = True


def sync_client(protocol: str, fake: FakeTriton) -> ProtectorClient:
    client = ProtectorClient(None, protocol, timeout=5)
    client._client.close()
    client._client = fake
    return client


def async_client(protocol: str, fake: AsyncFakeTriton) -> AsyncProtectorClient:
    client = AsyncProtectorClient(None, protocol, timeout=5)
    client._client = fake
    client._triton = tritonclient.http if protocol == "http" else tritonclient.grpc
    return client


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_ask_sends_contract_and_parses_answer(protocol):
    fake = FakeTriton(protector_outputs())
    with sync_client(protocol, fake) as client:
        answer = client.ask("q", image=PNG, max_tokens=8, threshold=0.25)
    assert fake.closed
    assert answer == ProtectedAnswer("I can't help with that. ü", 0.875, True, None,
                                     dict(zip(HARM_CATEGORIES, CATEGORY_SCORES, strict=True)))
    assert type(answer.harm_score) is float and type(answer.rewritten) is bool
    assert answer.harm_category == "cyber" and sum(answer.harm_categories.values()) == 0.875
    (call,) = fake.calls
    assert call["model"] == "protector"
    assert call["inputs"] == {
        "text_input": ("BYTES", [1, 1]),
        "image": ("BYTES", [1, 1]),
        "max_tokens": ("INT32", [1, 1]),
    }
    assert call["outputs"] == ["text_output", "harm_score", "harm_categories", "rewritten"]
    assert call["parameters"] == {"harm_threshold": 0.25}
    assert call["kwargs"] == ({"client_timeout": 5.0} if protocol == "grpc" else {})


def test_ask_without_threshold_sends_no_parameters_and_original_when_asked():
    fake = FakeTriton(protector_outputs(original=True))
    client = sync_client("http", fake)
    answer = client.ask("q", response="r", want_original=True)
    assert answer.original_text == "harmful text"
    assert fake.calls[0]["parameters"] is None
    assert fake.calls[0]["outputs"][-1] == "original_text"
    assert set(fake.calls[0]["inputs"]) == {"text_input", "response"}


def test_missing_output_is_an_error():
    arrays = protector_outputs()
    del arrays["rewritten"]
    with pytest.raises(ProtectorError, match="rewritten"):
        sync_client("http", FakeTriton(arrays)).ask("q")


def test_generate_score_detoxify():
    fake = FakeTriton(
        {
            "text_output": np.array([[b"plain answer"]], dtype=np.object_),
            "harm_score": np.array([[0.125]], dtype=np.float32),
        }
    )
    client = sync_client("grpc", fake)
    assert client.generate("q", image=PNG, max_tokens=2) == "plain answer"
    assert client.score("q", "a") == 0.125
    assert client.detoxify("q", "a") == "plain answer"
    assert [c["model"] for c in fake.calls] == ["mllm", "harm_detector", "detoxifier"]
    assert fake.calls[0]["outputs"] == ["text_output"] and fake.calls[1]["outputs"] == ["harm_score"]


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (InferenceServerException("text_input is empty", status="400"), ProtectorError, "^text_input is empty$"),
        (
            InferenceServerException("image is corrupt", status="StatusCode.INVALID_ARGUMENT"),
            ProtectorError,
            "^image is corrupt$",
        ),
        (
            InferenceServerException("failed to connect", status="StatusCode.UNAVAILABLE"),
            ProtectorConnectionError,
            "cannot reach Triton at localhost:8000",
        ),
        (
            InferenceServerException("Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"),
            ProtectorConnectionError,
            "within 5 s",
        ),
        (ConnectionRefusedError(111, "Connection refused"), ProtectorConnectionError, "Connection refused"),
        (TimeoutError("timed out"), ProtectorConnectionError, "no answer from Triton"),
    ],
)
def test_errors_become_protector_errors(error, kind, message):
    with pytest.raises(kind, match=message) as info:
        sync_client("http", FakeTriton(error=error)).ask("q")
    assert type(info.value) is kind
    assert info.value.model == "protector"
    if isinstance(error, InferenceServerException):
        assert info.value.status == error.status()


def test_health_and_not_found_model():
    fake = FakeTriton()
    fake.model_ready = {"detoxifier": False, "mllm": InferenceServerException("not found", "StatusCode.NOT_FOUND")}
    health = sync_client("grpc", fake).health()
    assert health == {
        "url": "localhost:8001",
        "protocol": "grpc",
        "server_version": "2.51.0",
        "live": True,
        "ready": True,
        "models": {"protector": True, "mllm": False, "harm_detector": True, "detoxifier": False},
    }
    assert list(health["models"]) == list(MODELS)
    assert not is_healthy(health)
    assert is_healthy({**health, "models": {"protector": True}})


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("metadata", [ValueError("Parse error at offset 0"), {"unexpected": 1}, "text"])
def test_health_of_something_that_is_not_triton(protocol, metadata):
    # e.g. the metrics port: every GET answers 200, so liveness alone would say "live".
    fake = FakeTriton()
    fake.metadata = metadata
    with pytest.raises(ProtectorConnectionError, match="not like a Triton server"):
        sync_client(protocol, fake).health()
    assert fake.metadata_kwargs == ({"as_json": True, "client_timeout": 5.0} if protocol == "grpc" else {})


def test_health_unreachable_raises():
    fake = FakeTriton()
    fake.model_ready = {"mllm": InferenceServerException("gone", "StatusCode.UNAVAILABLE")}
    with pytest.raises(ProtectorConnectionError):
        sync_client("grpc", fake).health()


def test_wait_ready_times_out_quickly():
    fake = FakeTriton()
    fake.model_ready = {"protector": False}
    start = time.monotonic()
    with pytest.raises(ProtectorConnectionError, match="models not ready: protector"):
        sync_client("http", fake).wait_ready(timeout=0.2, interval=0.05)
    assert time.monotonic() - start < 2
    assert sync_client("http", FakeTriton()).wait_ready(timeout=1)["ready"]


def test_closed_client_raises():
    client = sync_client("http", FakeTriton(protector_outputs()))
    client.close()
    client.close()
    with pytest.raises(ProtectorError, match="closed"):
        client.ask("q")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_async_client_same_contract(protocol):
    async def run():
        fake = AsyncFakeTriton(protector_outputs(original=True))
        async with async_client(protocol, fake) as client:
            answers = await asyncio.gather(*(client.ask(f"q{i}", threshold=0.5, want_original=True) for i in range(3)))
            health = await client.health(["protector"])
        return fake, answers, health

    fake, answers, health = asyncio.run(run())
    assert fake.closed
    expected = ProtectedAnswer("I can't help with that. ü", 0.875, True, "harmful text",
                               dict(zip(HARM_CATEGORIES, CATEGORY_SCORES, strict=True)))
    assert all(a == expected for a in answers)
    assert len(fake.calls) == 3 and all(c["parameters"] == {"harm_threshold": 0.5} for c in fake.calls)
    assert fake.calls[0]["kwargs"] == ({"client_timeout": 5.0} if protocol == "grpc" else {})
    assert health["models"] == {"protector": True}


def test_async_client_errors():
    async def run():
        fake = AsyncFakeTriton(error=InferenceServerException("bad image", status="400"))
        async with async_client("http", fake) as client:
            await client.score("q", "a")

    with pytest.raises(ProtectorError, match="^bad image$"):
        asyncio.run(run())


def test_async_client_needs_async_with():
    with pytest.raises(TypeError), AsyncProtectorClient():
        pass


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_clients_against_closed_port(protocol):
    url = f"127.0.0.1:{closed_port()}"
    with pytest.raises(ProtectorConnectionError, match="cannot reach Triton"):
        ProtectorClient(url, protocol, timeout=2).ask("q")

    async def run():
        async with AsyncProtectorClient(url, protocol, timeout=2) as client:
            await client.health()

    with pytest.raises(ProtectorConnectionError, match="cannot reach Triton"):
        asyncio.run(run())


# ---------------------------------------------------------------------------------------------------------------
# URLs and settings


@pytest.mark.parametrize(
    ("url", "protocol", "expected"),
    [
        (None, "http", ("localhost:8000", False)),
        (None, "grpc", ("localhost:8001", False)),
        ("http://example:9000/", "http", ("example:9000", False)),
        ("https://example:443", "http", ("example:443", True)),
        ("grpc://10.0.0.1:8001", "grpc", ("10.0.0.1:8001", False)),
        (" host:1 ", "GRPC", ("host:1", False)),
    ],
)
def test_normalize_url(url, protocol, expected):
    assert normalize_url(url, protocol) == expected


@pytest.mark.parametrize("url", ["", "http://", "host:1/v2/models", "a b:1"])
def test_normalize_url_rejects(url):
    with pytest.raises(ValueError):
        normalize_url(url, "http")


def test_bad_settings():
    with pytest.raises(ValueError, match="protocol"):
        ProtectorClient(protocol="websocket")
    with pytest.raises(ValueError, match="timeout"):
        ProtectorClient(timeout=0)
    assert ProtectorClient(protocol="grpc").url == "localhost:8001"


# ---------------------------------------------------------------------------------------------------------------
# CLI


def parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_cli_parse_ask_defaults():
    args = parse("ask", "hello")
    assert (args.command, args.prompt, args.url, args.protocol) == ("ask", "hello", None, "http")
    assert (args.image, args.response, args.max_tokens, args.threshold) == (None, None, None, None)
    assert (args.original, args.json, args.timeout) == (False, False, 120.0)


def test_cli_parse_ask_all_options():
    args = parse(
        "ask",
        "--url",
        "h:1",
        "--protocol",
        "grpc",
        "--image",
        "x.png",
        "--response",
        "r",
        "--max-tokens",
        "16",
        "--threshold",
        "0.7",
        "--original",
        "--json",
        "--timeout",
        "3",
        "the prompt",
    )
    assert (args.url, args.protocol, args.image, args.response) == ("h:1", "grpc", "x.png", "r")
    assert (args.max_tokens, args.threshold, args.original, args.json, args.timeout) == (16, 0.7, True, True, 3.0)


def test_cli_parse_health():
    args = parse("health", "--protocol", "grpc", "--json")
    assert (args.command, args.protocol, args.url, args.json) == ("health", "grpc", None, True)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["ask"],
        ["ask", "--protocol", "ws", "q"],
        ["ask", "--max-tokens", "0", "q"],
        ["ask", "--max-tokens", "many", "q"],
        ["ask", "--threshold", "nan", "q"],
        ["ask", "--timeout", "-1", "q"],
        ["ask", "--image", "/nonexistent/x.png", "q"],
        ["ask", "--url", "host:1/path", "q"],
        ["health", "--bogus"],
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(argv, capsys):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("mllm-protector") and "error" in err


def test_cli_help_exits_0(capsys):
    assert cli.main(["ask", "--help"]) == 0
    assert "--max-tokens" in capsys.readouterr().out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("command", [["ask", "hello"], ["health"]])
def test_cli_closed_port_exit_1_one_line(protocol, command, capsys):
    argv = [command[0], "--url", f"127.0.0.1:{closed_port()}", "--protocol", protocol, "--timeout", "2", *command[1:]]
    start = time.monotonic()
    assert cli.main(argv) == 1
    assert time.monotonic() - start < 10
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("mllm-protector: error: cannot reach Triton at 127.0.0.1:")


def test_python_m_runs_cli_without_traceback():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mllm_protector.client",
            "ask",
            "--url",
            f"127.0.0.1:{closed_port()}",
            "--timeout",
            "2",
            "q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "cannot reach Triton" in proc.stderr


class FakeCliClient:
    """Stands in for ProtectorClient inside cli.py."""

    instances: list[FakeCliClient] = []
    answer = ProtectedAnswer("safe text", 0.9, True, "unsafe text")
    health_result: dict[str, Any] = {}
    error: BaseException | None = None

    def __init__(self, url, protocol, timeout):
        self.args = (url, protocol, timeout)
        self.ask_kwargs: dict[str, Any] = {}
        FakeCliClient.instances.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def ask(self, prompt, **kwargs):
        if self.error is not None:
            raise self.error
        self.ask_kwargs = {"prompt": prompt, **kwargs}
        return self.answer

    def health(self):
        return self.health_result


@pytest.fixture
def fake_cli(monkeypatch):
    FakeCliClient.instances = []
    FakeCliClient.error = None
    monkeypatch.setattr(cli, "ProtectorClient", FakeCliClient)
    return FakeCliClient


def test_cli_ask_passes_options(fake_cli, tmp_path, capsys):
    image = tmp_path / "i.png"
    image.write_bytes(PNG)
    argv = ["ask", "--protocol", "grpc", "--image", str(image), "--response", "r", "--max-tokens", "5"]
    assert cli.main([*argv, "--threshold", "0.4", "--original", "p"]) == 0
    (client,) = fake_cli.instances
    assert client.args == (None, "grpc", 120.0)
    assert client.ask_kwargs == {
        "prompt": "p",
        "image": PNG,
        "response": "r",
        "max_tokens": 5,
        "threshold": 0.4,
        "want_original": True,
    }
    assert capsys.readouterr().out == cli.format_answer(fake_cli.answer) + "\n"


def test_cli_ask_without_a_prompt_sends_an_empty_one(fake_cli, tmp_path):
    image = tmp_path / "i.png"
    image.write_bytes(PNG)
    assert cli.main(["ask", "--image", str(image)]) == 0
    assert fake_cli.instances[-1].ask_kwargs["prompt"] == "" and fake_cli.instances[-1].ask_kwargs["image"] == PNG


def test_cli_ask_json(fake_cli, capsys):
    assert cli.main(["ask", "--json", "p"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {
        "text": "safe text",
        "harm_score": 0.9,
        "rewritten": True,
        "original_text": "unsafe text",
    }


def test_cli_ask_prompt_from_stdin(fake_cli, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("from stdin\n"))
    assert cli.main(["ask", "-"]) == 0
    assert fake_cli.instances[0].ask_kwargs["prompt"] == "from stdin"


def test_cli_server_error_exit_1(fake_cli, capsys):
    fake_cli.error = ProtectorError("text_input is empty\nsecond line", status="400")
    assert cli.main(["ask", "p"]) == 1
    assert capsys.readouterr().err == "mllm-protector: error: text_input is empty second line\n"


def test_cli_unexpected_error_has_no_traceback(fake_cli, capsys):
    fake_cli.error = RuntimeError("boom")
    assert cli.main(["ask", "p"]) == 1
    assert capsys.readouterr().err == "mllm-protector: error: RuntimeError: boom\n"


def test_cli_health_exit_codes(fake_cli, capsys):
    fake_cli.health_result = {
        "url": "localhost:8000",
        "protocol": "http",
        "live": True,
        "ready": True,
        "models": {"protector": True, "mllm": True},
    }
    assert cli.main(["health"]) == 0
    out = capsys.readouterr().out
    assert "live: yes" in out and "model protector  ready" in out
    fake_cli.health_result = {**fake_cli.health_result, "models": {"protector": True, "mllm": False}}
    assert cli.main(["health", "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["models"] == {"protector": True, "mllm": False}
    assert err == "mllm-protector: models not ready: mllm\n"


# ---------------------------------------------------------------------------------------------------------------
# Output formatting


def test_format_answer_text():
    text = cli.format_answer(ProtectedAnswer("Here is a cat.", 0.0123, False))
    assert text == "Here is a cat.\n\nharm_score: 0.0123\nrewritten: no"


def test_format_answer_names_the_top_hazard_category():
    categories = dict(zip(HARM_CATEGORIES, CATEGORY_SCORES, strict=True))
    text = cli.format_answer(ProtectedAnswer("safe", 0.875, True, None, categories))
    assert text.splitlines()[-1] == "harm_category: cyber (0.6250)"
    data = json.loads(cli.format_answer(ProtectedAnswer("safe", 0.875, True, None, categories), as_json=True))
    assert data["harm_category"] == "cyber" and data["harm_categories"] == categories
    none = ProtectedAnswer("ok", 0.0, False, None, dict.fromkeys(HARM_CATEGORIES, 0.0))
    assert none.harm_category is None and "harm_category" not in cli.format_answer(none)


def test_wrong_number_of_category_scores_is_an_error():
    arrays = protector_outputs()
    arrays["harm_categories"] = np.zeros((1, 3), np.float32)
    with pytest.raises(ProtectorError, match="harm_categories has 3 values"):
        ProtectedAnswer.from_outputs(arrays)


def test_format_answer_with_original():
    text = cli.format_answer(ProtectedAnswer("safe", 0.97, True, "unsafe"))
    assert text.splitlines() == ["safe", "", "harm_score: 0.9700", "rewritten: yes", "original_text:", "unsafe"]


def test_format_answer_json_only_includes_original_when_requested():
    plain = json.loads(cli.format_answer(ProtectedAnswer("é", 0.5, False), as_json=True))
    assert plain == {"text": "é", "harm_score": 0.5, "rewritten": False}
    assert "é" in cli.format_answer(ProtectedAnswer("é", 0.5, False), as_json=True)  # not \u-escaped
    with_original = json.loads(cli.format_answer(ProtectedAnswer("a", 0.5, True, "b"), as_json=True))
    assert with_original["original_text"] == "b"


def test_format_health():
    health = {
        "url": "h:1",
        "protocol": "grpc",
        "live": True,
        "ready": False,
        "models": {"protector": False, "mllm": True},
    }
    assert (
        cli.format_health({**health, "server_version": "2.51.0"}).splitlines()[0] == "server: h:1 (grpc), Triton 2.51.0"
    )
    assert cli.format_health(health).splitlines() == [
        "server: h:1 (grpc)",
        "live: yes",
        "ready: no",
        "model protector  NOT READY",
        "model mllm       ready",
    ]
    assert json.loads(cli.format_health(health, as_json=True)) == health
