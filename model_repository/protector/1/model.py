"""protector: the entry point. Triton requests in, one `Guard.run` per request, Triton responses out."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import triton_python_backend_utils as pb_utils

from mllm_protector.detector_text import HARM_CATEGORIES
from mllm_protector.guard import DetectorFailurePolicy, Guard, GuardResult
from mllm_protector.protector_request import ProtectorSettings, parse_request
from mllm_protector.tensors import InputError, string_tensor
from mllm_protector.triton_params import model_parameters

from bls_calls import BlsCalls
from metrics import ProtectorMetrics

INPUTS = ("text_input", "image", "response", "max_tokens")
OUTPUTS = ("text_output", "harm_score", "rewritten", "original_text", "harm_categories")


NO_CATEGORIES = (0.0,) * len(HARM_CATEGORIES)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = model_parameters(json.loads(args["model_config"]))
        self.settings = ProtectorSettings.from_parameters(params)
        calls = BlsCalls(
            mllm=params.get("mllm_model") or "mllm",
            detector=params.get("detector_model") or "harm_detector",
            detoxifier=params.get("detoxifier_model") or "detoxifier",
            rewrite_timeout_s=self.settings.rewrite_timeout_s,
        )
        self.metrics = ProtectorMetrics(args["model_name"])
        self.guard = Guard(
            generate=self.metrics.timed("generate", calls.generate),
            score=self.metrics.timed("score", calls.score),
            rewrite=self.metrics.timed("rewrite", calls.rewrite),
            on_detector_error=DetectorFailurePolicy(self.settings.on_detector_error),
            on_call_error=lambda stage, e: pb_utils.Logger.log_warn(f"protector: {stage} failed: {e}"),
            score_timeout_s=self.settings.score_timeout_s or None,
            rewrite_timeout_s=self.settings.rewrite_timeout_s or None,
            generate_timeout_s=self.settings.generate_timeout_s or None,
        )

    async def execute(self, requests: list) -> None:
        """Each request is guarded on its own and answered through its response sender as soon as its rows are
        final: a benign answer never waits for another request's generation or rewrite. The concurrent sub-calls
        still meet in the batchers of `mllm`, `harm_detector` and `detoxifier`."""
        await asyncio.gather(*(self._answer(request) for request in requests))

    async def _answer(self, request) -> None:
        inputs = {name: _input(request, name) for name in INPUTS}
        try:
            if inputs.get("image") is None:
                items = parse_request(inputs, request.parameters(), self.settings)
            else:  # off the event loop: decoding a large image must not hold up this instance's other requests
                items = await asyncio.to_thread(parse_request, inputs, request.parameters(), self.settings)
        except InputError as e:
            rows: list[GuardResult | Exception] = [e]
        else:
            try:
                rows = await self.guard.run(items)
            except Exception as e:  # a bug, not a client error: the request still gets an answer
                rows = [RuntimeError(f"protector failed: {e}")]
        self.metrics.record(rows)
        response = _response(rows, _wants_original(request.requested_output_names()))
        request.get_response_sender().send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


def _wants_original(requested: list[str]) -> bool:
    """The unguarded text is private: only a client that names `original_text` gets it. Triton requests every output
    when a client names none, so "all of them" is read as "none named" (name a subset to get original_text)."""
    return "original_text" in requested and len(requested) < len(OUTPUTS)


def _input(request, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def _response(rows: list[GuardResult | Exception], with_original: bool):
    for row in rows:
        if isinstance(row, Exception):  # bad input is the client's (HTTP 400, gRPC INVALID_ARGUMENT); the rest ours
            code = pb_utils.TritonError.INVALID_ARG if isinstance(row, InputError) else pb_utils.TritonError.INTERNAL
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(row), code))

    outputs = [
        pb_utils.Tensor("text_output", string_tensor([r.text for r in rows])),
        pb_utils.Tensor("harm_score", np.array([[r.harm_score] for r in rows], dtype=np.float32)),
        pb_utils.Tensor("rewritten", np.array([[r.rewritten] for r in rows], dtype=np.bool_)),
        # zeros where the detector gave no categories (a detector without that output)
        pb_utils.Tensor("harm_categories", np.array([r.harm_categories or NO_CATEGORIES for r in rows], np.float32)),
    ]
    if with_original:
        outputs.append(pb_utils.Tensor("original_text", string_tensor([r.original_text for r in rows])))
    return pb_utils.InferenceResponse(output_tensors=outputs)
