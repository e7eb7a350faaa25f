"""Typed clients for the MLLM-Protector Triton server, over HTTP or gRPC, synchronous or asyncio.

    from mllm_protector.client import ProtectorClient

    with ProtectorClient("localhost:8000", protocol="http") as client:
        answer = client.ask("What does the sign say?", image="sign.png")
        print(answer.text, answer.harm_score, answer.rewritten)

    async with AsyncProtectorClient("localhost:8001", protocol="grpc") as client:
        answers = await asyncio.gather(*(client.ask(p) for p in prompts))

Both classes have the same methods (coroutines on :class:`AsyncProtectorClient`):

- ``ask``      -> :class:`ProtectedAnswer`  the guarded entry point ``protector``
- ``generate`` -> ``str``                   the bare, unguarded ``mllm``
- ``score``    -> ``float``                 the ``harm_detector`` alone
- ``detoxify`` -> ``str``                   the ``detoxifier`` alone
- ``infer``    -> ``dict[str, ndarray]``    any :class:`~mllm_protector.client.tensors.InferSpec`, outputs as returned
- ``health`` / ``wait_ready`` -> ``dict``    server liveness/readiness and per-model readiness

Every failure that comes from the server or the connection is raised as :class:`ProtectorError` (the server's
message is ``str(error)``); failures to reach the server at all are its subclass :class:`ProtectorConnectionError`.
Invalid arguments (a non-positive ``max_tokens``, a NaN threshold, an unknown protocol) raise ``ValueError`` and an
unreadable image path raises ``OSError`` before anything is sent.

Thread-safety: like the underlying ``tritonclient`` objects, one client must be used by one thread
(``tritonclient.http`` is gevent-based); for concurrency use :class:`AsyncProtectorClient` (``tritonclient.http.aio``
/ ``tritonclient.grpc.aio``), one per event loop, or one synchronous gRPC client per thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import importlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mllm_protector.detector_text import HARM_CATEGORIES
from mllm_protector.guard import top_category

from . import tensors
from .tensors import ImageSource, InferSpec, Text

HTTP = "http"
GRPC = "grpc"
PROTOCOLS: tuple[str, ...] = (HTTP, GRPC)
DEFAULT_PORTS: Mapping[str, int] = {HTTP: 8000, GRPC: 8001}
DEFAULT_TIMEOUT = 120.0
"""Seconds a call may take (connect + answer); CPU generation with large ``max_tokens`` under load is slow."""


# ---------------------------------------------------------------------------------------------------------------
# Results and errors


class ProtectorError(RuntimeError):
    """A request failed at the server or on the way there; ``str(error)`` is the server's message.

    Attributes: ``message`` (same as ``str``), ``status`` (HTTP status code such as ``"400"`` or gRPC code such as
    ``"StatusCode.INVALID_ARGUMENT"``; None when unknown) and ``model`` (the model called; None for health calls).
    """

    def __init__(self, message: str, *, status: str | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.model = model


class ProtectorConnectionError(ProtectorError):
    """The server could not be reached, or did not answer within the client's timeout."""


@dataclass(frozen=True)
class ProtectedAnswer:
    """What ``protector`` returns for one request.

    ``text``: the answer that is safe to show; ``harm_score``: the detector's score of the *original* answer (0 =
    harmless, 1 = harmful); ``rewritten``: whether ``text`` differs from the original because it was flagged;
    ``original_text``: the original answer, only when it was requested (``want_original=True``), else None;
    ``harm_categories``: ``harm_score`` split over the hazard categories (name -> score, summing to ``harm_score``;
    all zero where the server's detector gives no categories), None if the server did not return them.
    """

    text: str
    harm_score: float
    rewritten: bool
    original_text: str | None = None
    harm_categories: Mapping[str, float] | None = None

    @property
    def harm_category(self) -> str | None:
        """The hazard category with the highest score, None when there is none (no categories, or all zero)."""
        return top_category([self.harm_categories[c] for c in HARM_CATEGORIES]) if self.harm_categories else None

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, np.ndarray]) -> ProtectedAnswer:
        """Build from ``protector``'s output tensors (one request; ``original_text`` may be absent)."""
        text = tensor_text(outputs[tensors.TEXT_OUTPUT])
        original = outputs.get(tensors.ORIGINAL_TEXT)
        original_text = None if original is None else tensor_text(original)
        rewritten = outputs.get(tensors.REWRITTEN)
        categories = outputs.get(tensors.HARM_CATEGORIES_OUTPUT)
        return cls(
            text=text,
            harm_score=tensor_float(outputs[tensors.HARM_SCORE]),
            rewritten=text != original_text if rewritten is None else tensor_bool(rewritten),
            original_text=original_text,
            harm_categories=None if categories is None else _categories(categories),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``original_text`` is included only when it was requested."""
        data: dict[str, Any] = {"text": self.text, "harm_score": self.harm_score, "rewritten": self.rewritten}
        if self.harm_categories is not None:
            data["harm_category"] = self.harm_category
            data["harm_categories"] = dict(self.harm_categories)
        if self.original_text is not None:
            data["original_text"] = self.original_text
        return data


def _categories(array: np.ndarray) -> dict[str, float]:
    values = np.asarray(array, dtype=np.float64).reshape(-1)
    if values.shape != (len(HARM_CATEGORIES),):
        raise ProtectorError(f"harm_categories has {values.size} values, expected {len(HARM_CATEGORIES)}")
    return dict(zip(HARM_CATEGORIES, values.tolist(), strict=True))


def _first(array: np.ndarray) -> Any:
    flat = np.asarray(array).reshape(-1)
    if flat.size == 0:
        raise ProtectorError("the server returned an empty output tensor")
    return flat[0]


def tensor_text(array: np.ndarray) -> str:
    """The first element of a BYTES output as text (UTF-8; undecodable bytes become U+FFFD)."""
    value = _first(array)
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def tensor_float(array: np.ndarray) -> float:
    """The first element of a numeric output as a Python float."""
    return float(_first(array))


def tensor_bool(array: np.ndarray) -> bool:
    """The first element of a BOOL output as a Python bool."""
    return bool(_first(array))


# ---------------------------------------------------------------------------------------------------------------
# Shared machinery


def normalize_url(url: str | None, protocol: str) -> tuple[str, bool]:
    """``(host:port, ssl)`` for tritonclient from a user URL.

    None gives ``localhost:8000`` (HTTP) or ``localhost:8001`` (gRPC). A scheme is accepted and dropped
    (``http://``, ``grpc://``); ``https://`` / ``grpcs://`` turn on TLS. A trailing ``/`` is dropped.
    """
    protocol = check_protocol(protocol)
    if url is None:
        return f"localhost:{DEFAULT_PORTS[protocol]}", False
    url = url.strip()
    ssl = False
    for scheme, secure in (("https://", True), ("grpcs://", True), ("http://", False), ("grpc://", False)):
        if url.lower().startswith(scheme):
            url, ssl = url[len(scheme) :], secure
            break
    url = url.rstrip("/")
    if not url or "/" in url or any(c.isspace() for c in url):
        raise ValueError(f"url must look like host:port, got {url!r}")
    return url, ssl


def check_protocol(protocol: str) -> str:
    """The protocol, lower-cased; raises ValueError unless it is ``"http"`` or ``"grpc"``."""
    value = str(protocol).lower()
    if value not in PROTOCOLS:
        raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
    return value


def _check_timeout(timeout: float) -> float:
    value = float(timeout)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return value


def _connection_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions the transports raise when the server cannot be reached or does not answer in time."""
    # http.client.HTTPException: geventhttpclient's parse errors (e.g. an HTTP client pointed at the gRPC port).
    types: list[type[BaseException]] = [OSError, asyncio.TimeoutError, TimeoutError, http.client.HTTPException]
    # Only modules already imported (by the transport in use) can have raised their exceptions.
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        types.append(aiohttp.ClientError)
    gevent = sys.modules.get("gevent")
    if gevent is not None:
        types.append(gevent.Timeout)  # a BaseException: geventhttpclient's network timeout
    return tuple(types)


_GRPC_CONNECTION_CODES = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")


class _Base:
    """What both clients share: settings, the tritonclient module, error translation, result collection."""

    def __init__(
        self,
        url: str | None = None,
        protocol: str = HTTP,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ssl: bool = False,
        verbose: bool = False,
    ) -> None:
        self.protocol: str = check_protocol(protocol)
        self.url, url_ssl = normalize_url(url, self.protocol)
        self.ssl: bool = bool(ssl or url_ssl)
        self.timeout: float = _check_timeout(timeout)
        self.verbose: bool = verbose
        self._client: Any = None
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, protocol={self.protocol!r}, timeout={self.timeout})"

    def _module(self, aio: bool) -> Any:
        name = f"tritonclient.{self.protocol}" + (".aio" if aio else "")
        try:
            return importlib.import_module(name)
        except ImportError as e:  # the `client` extra is missing
            raise ProtectorError(f"{name} is not importable ({e}); install mllm-protector[client]") from e

    def _call_kwargs(self) -> dict[str, Any]:
        # HTTP timeouts are set on the connection; gRPC takes a deadline per call.
        return {"client_timeout": self.timeout} if self.protocol == GRPC else {}

    @contextlib.contextmanager
    def _errors(self, model: str | None) -> Iterator[None]:
        """Translate tritonclient / transport exceptions into ProtectorError."""
        from tritonclient.utils import InferenceServerException

        try:
            yield
        except InferenceServerException as e:
            status = e.status()
            message = e.message() or str(e)
            if status == "StatusCode.DEADLINE_EXCEEDED":
                raise ProtectorConnectionError(
                    f"no answer from Triton at {self.url} ({self.protocol}) within {self.timeout:g} s",
                    status=status,
                    model=model,
                ) from e
            if status == "StatusCode.UNAVAILABLE":
                raise ProtectorConnectionError(
                    f"cannot reach Triton at {self.url} ({self.protocol}): {_one_line(message)}",
                    status=status,
                    model=model,
                ) from e
            raise ProtectorError(message, status=status, model=model) from e
        except _connection_error_types() as e:
            if isinstance(e, (TimeoutError, asyncio.TimeoutError)) or type(e).__name__ == "Timeout":
                message = f"no answer from Triton at {self.url} ({self.protocol}) within {self.timeout:g} s"
            else:
                detail = _one_line(str(e)) or type(e).__name__
                message = f"cannot reach Triton at {self.url} ({self.protocol}): {detail}"
            raise ProtectorConnectionError(message, model=model) from e

    @staticmethod
    def _collect(spec: InferSpec, result: Any) -> dict[str, np.ndarray]:
        outputs = {}
        for name in spec.outputs:
            array = result.as_numpy(name)
            if array is None:
                raise ProtectorError(f"{spec.model} returned no '{name}' output", model=spec.model)
            outputs[name] = array
        return outputs

    def _metadata_kwargs(self) -> dict[str, Any]:
        return {"as_json": True, **self._call_kwargs()} if self.protocol == GRPC else {}

    def _server_version(self, get_metadata: Callable[[], Any]) -> str:
        """The Triton version from the server metadata; raises ProtectorConnectionError if it is not Triton's."""
        try:
            metadata = get_metadata()
        except ValueError:  # not JSON: something else answers on this port (e.g. the metrics endpoint)
            metadata = None
        if not isinstance(metadata, Mapping) or "version" not in metadata:
            raise ProtectorConnectionError(
                f"{self.url} ({self.protocol}) answers, but not like a Triton server (wrong port?)"
            )
        return str(metadata["version"])

    def _check_open(self) -> None:
        if self._closed:
            raise ProtectorError(f"{type(self).__name__} for {self.url} is closed")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _health_dict(
    url: str, protocol: str, live: bool, ready: bool, models: Mapping[str, bool], version: str
) -> dict[str, Any]:
    return {
        "url": url,
        "protocol": protocol,
        "server_version": version,
        "live": bool(live),
        "ready": bool(ready),
        "models": dict(models),
    }


def is_healthy(health: Mapping[str, Any]) -> bool:
    """True when a ``health()`` dict says the server is live and ready and every listed model is ready."""
    return bool(health.get("live")) and bool(health.get("ready")) and all(health.get("models", {}).values())


def _model_not_ready(exc: BaseException) -> bool:
    """Whether an error from a per-model readiness call means 'not ready' (e.g. an unknown model over gRPC) rather
    than 'server unreachable'."""
    from tritonclient.utils import InferenceServerException

    return isinstance(exc, InferenceServerException) and exc.status() not in _GRPC_CONNECTION_CODES


# ---------------------------------------------------------------------------------------------------------------
# Synchronous client


class ProtectorClient(_Base):
    """Synchronous client (``tritonclient.http`` or ``tritonclient.grpc``).

    ``url``: ``host:port`` (a scheme such as ``http://`` is accepted); None means ``localhost:8000`` for HTTP and
    ``localhost:8001`` for gRPC. ``timeout``: seconds per call (HTTP: connect and network timeout; gRPC: deadline).
    ``ssl``: TLS (also turned on by an ``https://`` URL). Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        protocol: str = HTTP,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ssl: bool = False,
        verbose: bool = False,
    ) -> None:
        super().__init__(url, protocol, timeout=timeout, ssl=ssl, verbose=verbose)
        module = self._module(aio=False)
        with self._errors(None):
            if self.protocol == HTTP:
                self._client = module.InferenceServerClient(
                    self.url,
                    verbose=verbose,
                    connection_timeout=self.timeout,
                    network_timeout=self.timeout,
                    ssl=self.ssl,
                )
            else:
                self._client = module.InferenceServerClient(self.url, verbose=verbose, ssl=self.ssl)
        self._triton = module

    def __enter__(self) -> ProtectorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; later calls raise ProtectorError. Closing twice is fine."""
        if not self._closed and self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        self._closed = True

    # -- generic ---------------------------------------------------------------------------------------------------

    def infer(self, spec: InferSpec) -> dict[str, np.ndarray]:
        """Send any request described by ``spec``; returns ``{output name: array}`` for each requested output."""
        self._check_open()
        inputs, outputs = tensors.to_triton(spec, self._triton)
        parameters = dict(spec.parameters) or None
        with self._errors(spec.model):
            result = self._client.infer(
                spec.model, inputs, outputs=outputs, parameters=parameters, **self._call_kwargs()
            )
        return self._collect(spec, result)

    # -- models ----------------------------------------------------------------------------------------------------

    def ask(
        self,
        prompt: Text,
        image: ImageSource | None = None,
        response: Text | None = None,
        max_tokens: int | None = None,
        threshold: float | None = None,
        want_original: bool = False,
    ) -> ProtectedAnswer:
        """Ask the guarded MLLM (model ``protector``).

        ``image``: encoded PNG/JPEG/WebP bytes or a file path. ``response``: guard-only mode, the answer (of any
        MLLM) to guard instead of generating one. ``max_tokens``: generation limit. ``threshold``: a stricter harm
        threshold for this request (the server rejects one above its own). ``want_original``: also return the
        unguarded answer.
        """
        spec = tensors.protector_request(prompt, image, response, max_tokens, threshold, want_original)
        return ProtectedAnswer.from_outputs(self.infer(spec))

    def generate(self, prompt: Text, image: ImageSource | None = None, max_tokens: int | None = None) -> str:
        """The bare, unguarded MLLM's answer (model ``mllm``)."""
        return tensor_text(self.infer(tensors.mllm_request(prompt, image, max_tokens))[tensors.TEXT_OUTPUT])

    def score(self, prompt: Text, response: Text) -> float:
        """The harm detector's score of ``response`` to ``prompt`` (model ``harm_detector``; 1 = harmful)."""
        return tensor_float(self.infer(tensors.harm_detector_request(prompt, response))[tensors.HARM_SCORE])

    def detoxify(self, prompt: Text, response: Text) -> str:
        """The detoxifier's rewrite of a harmful ``response`` to ``prompt`` (model ``detoxifier``, not re-scored)."""
        return tensor_text(self.infer(tensors.detoxifier_request(prompt, response))[tensors.TEXT_OUTPUT])

    # -- health ----------------------------------------------------------------------------------------------------

    def health(self, models: Iterable[str] = tensors.MODELS) -> dict[str, Any]:
        """``{"url", "protocol", "server_version", "live": bool, "ready": bool, "models": {name: ready}}``.

        Raises ProtectorConnectionError when the server cannot be reached at all or is not a Triton server.
        """
        self._check_open()
        kwargs = self._call_kwargs()
        with self._errors(None):
            live = self._client.is_server_live(**kwargs)
            version = self._server_version(lambda: self._client.get_server_metadata(**self._metadata_kwargs()))
            ready = self._client.is_server_ready(**kwargs)
            states = {}
            for name in models:
                try:
                    states[name] = bool(self._client.is_model_ready(name, **kwargs))
                except Exception as e:  # an unknown model over gRPC is an error, not False
                    if not _model_not_ready(e):
                        raise
                    states[name] = False
        return _health_dict(self.url, self.protocol, live, ready, states, version)

    def wait_ready(
        self, timeout: float = 60.0, models: Iterable[str] = tensors.MODELS, interval: float = 0.25
    ) -> dict[str, Any]:
        """Poll :meth:`health` until the server and ``models`` are ready; returns the last health dict.

        Raises ProtectorConnectionError if that does not happen within ``timeout`` seconds.
        """
        models = tuple(models)
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while True:
            try:
                health = self.health(models)
                if is_healthy(health):
                    return health
                last = _not_ready(health)
            except ProtectorConnectionError as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise ProtectorConnectionError(f"Triton at {self.url} not ready after {timeout:g} s: {last}")
            time.sleep(interval)


def _not_ready(health: Mapping[str, Any]) -> str:
    if not health.get("live"):
        return "server not live"
    if not health.get("ready"):
        return "server not ready"
    waiting = [name for name, ready in health.get("models", {}).items() if not ready]
    return "models not ready: " + ", ".join(waiting)


# ---------------------------------------------------------------------------------------------------------------
# asyncio client


class AsyncProtectorClient(_Base):
    """asyncio client (``tritonclient.http.aio`` or ``tritonclient.grpc.aio``); same methods as coroutines.

    The connection is opened on the first call inside the running event loop and belongs to that loop; use
    ``async with`` or ``await client.close()``. Concurrent calls (``asyncio.gather``) overlap on one client.
    """

    def __enter__(self) -> None:
        raise TypeError("use 'async with AsyncProtectorClient(...)'")

    def __exit__(self, *exc_info: object) -> None:  # pragma: no cover - __enter__ always raises
        pass

    async def __aenter__(self) -> AsyncProtectorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; later calls raise ProtectorError. Closing twice is fine."""
        if not self._closed and self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        self._closed = True

    def _connect(self) -> Any:
        self._check_open()
        if self._client is None:
            module = self._module(aio=True)
            with self._errors(None):
                if self.protocol == HTTP:
                    self._client = module.InferenceServerClient(
                        self.url, verbose=self.verbose, conn_timeout=self.timeout, ssl=self.ssl
                    )
                else:
                    self._client = module.InferenceServerClient(self.url, verbose=self.verbose, ssl=self.ssl)
            self._triton = module
        return self._client

    async def infer(self, spec: InferSpec) -> dict[str, np.ndarray]:
        """Send any request described by ``spec``; returns ``{output name: array}`` for each requested output."""
        client = self._connect()
        inputs, outputs = tensors.to_triton(spec, self._triton)
        parameters = dict(spec.parameters) or None
        with self._errors(spec.model):
            result = await client.infer(
                spec.model, inputs, outputs=outputs, parameters=parameters, **self._call_kwargs()
            )
        return self._collect(spec, result)

    async def ask(
        self,
        prompt: Text,
        image: ImageSource | None = None,
        response: Text | None = None,
        max_tokens: int | None = None,
        threshold: float | None = None,
        want_original: bool = False,
    ) -> ProtectedAnswer:
        """Ask the guarded MLLM (model ``protector``); see :meth:`ProtectorClient.ask`."""
        spec = tensors.protector_request(prompt, image, response, max_tokens, threshold, want_original)
        return ProtectedAnswer.from_outputs(await self.infer(spec))

    async def generate(self, prompt: Text, image: ImageSource | None = None, max_tokens: int | None = None) -> str:
        """The bare, unguarded MLLM's answer (model ``mllm``)."""
        outputs = await self.infer(tensors.mllm_request(prompt, image, max_tokens))
        return tensor_text(outputs[tensors.TEXT_OUTPUT])

    async def score(self, prompt: Text, response: Text) -> float:
        """The harm detector's score of ``response`` to ``prompt`` (model ``harm_detector``; 1 = harmful)."""
        outputs = await self.infer(tensors.harm_detector_request(prompt, response))
        return tensor_float(outputs[tensors.HARM_SCORE])

    async def detoxify(self, prompt: Text, response: Text) -> str:
        """The detoxifier's rewrite of a harmful ``response`` to ``prompt`` (model ``detoxifier``, not re-scored)."""
        outputs = await self.infer(tensors.detoxifier_request(prompt, response))
        return tensor_text(outputs[tensors.TEXT_OUTPUT])

    async def health(self, models: Iterable[str] = tensors.MODELS) -> dict[str, Any]:
        """See :meth:`ProtectorClient.health`."""
        client = self._connect()
        kwargs = self._call_kwargs()
        with self._errors(None):
            live = await client.is_server_live(**kwargs)
            metadata = None
            with contextlib.suppress(ValueError):
                metadata = await client.get_server_metadata(**self._metadata_kwargs())
            version = self._server_version(lambda: metadata)
            ready = await client.is_server_ready(**kwargs)
            states = {}
            for name in models:
                try:
                    states[name] = bool(await client.is_model_ready(name, **kwargs))
                except Exception as e:
                    if not _model_not_ready(e):
                        raise
                    states[name] = False
        return _health_dict(self.url, self.protocol, live, ready, states, version)

    async def wait_ready(
        self, timeout: float = 60.0, models: Iterable[str] = tensors.MODELS, interval: float = 0.25
    ) -> dict[str, Any]:
        """See :meth:`ProtectorClient.wait_ready`."""
        models = tuple(models)
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while True:
            try:
                health = await self.health(models)
                if is_healthy(health):
                    return health
                last = _not_ready(health)
            except ProtectorConnectionError as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise ProtectorConnectionError(f"Triton at {self.url} not ready after {timeout:g} s: {last}")
            await asyncio.sleep(interval)
