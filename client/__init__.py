"""Python client for MLLM-Protector on Triton (HTTP and gRPC, sync and asyncio), and the ``mllm-protector`` command.

    from mllm_protector.client import ProtectorClient
    with ProtectorClient() as client:                       # http on localhost:8000
        answer = client.ask("What does it say?", image="sign.png")

See :mod:`mllm_protector.client.api` for the clients and :mod:`mllm_protector.client.tensors` for the tensor
contract. ``tritonclient`` is imported only when a client is created (the ``client`` extra).
"""

from .api import (
    DEFAULT_PORTS,
    DEFAULT_TIMEOUT,
    PROTOCOLS,
    AsyncProtectorClient,
    ProtectedAnswer,
    ProtectorClient,
    ProtectorConnectionError,
    ProtectorError,
    is_healthy,
    normalize_url,
)
from .tensors import (
    MODELS,
    InferSpec,
    TensorSpec,
    detoxifier_request,
    harm_detector_request,
    mllm_request,
    protector_request,
)

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_TIMEOUT",
    "MODELS",
    "PROTOCOLS",
    "AsyncProtectorClient",
    "InferSpec",
    "ProtectedAnswer",
    "ProtectorClient",
    "ProtectorConnectionError",
    "ProtectorError",
    "TensorSpec",
    "detoxifier_request",
    "harm_detector_request",
    "is_healthy",
    "mllm_request",
    "normalize_url",
    "protector_request",
]
