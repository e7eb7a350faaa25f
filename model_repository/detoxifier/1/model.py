"""detoxifier: (question, harmful answer) rows in, one batched rewrite, rewritten answers out."""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from mllm_protector.detox import Detoxifier
from mllm_protector.tensors import TensorDecodeError, decode_strings
from mllm_protector.triton_params import model_parameters, resolve_path


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = model_parameters(json.loads(args["model_config"]))
        self.detoxifier = Detoxifier(
            resolve_path(params["weights_dir"], args["model_repository"]),
            max_new_tokens=int(params.get("max_new_tokens") or 128),
        )

    def execute(self, requests: list) -> list:
        parsed: list[tuple[list[str], list[str]] | str] = []
        for request in requests:
            try:
                answers = decode_strings(pb_utils.get_input_tensor_by_name(request, "response"), "response")
                question = pb_utils.get_input_tensor_by_name(request, "text_input")
                questions = decode_strings(question, "text_input") if question is not None else [""] * len(answers)
                if len(questions) != len(answers):
                    raise TensorDecodeError("text_input and response must have the same number of rows")
                parsed.append((questions, answers))
            except TensorDecodeError as e:
                parsed.append(str(e))
        batch = [p for p in parsed if not isinstance(p, str)]
        questions = [q for qs, _ in batch for q in qs]
        rewrites = iter(self.detoxifier.rewrite(questions, [a for _, answers in batch for a in answers]))
        responses = []
        for p in parsed:
            if isinstance(p, str):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(p)))
                continue
            texts = [next(rewrites).encode("utf-8") for _ in p[1]]
            out = pb_utils.Tensor("text_output", np.array(texts, dtype=np.object_).reshape(-1, 1))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
