"""detoxifier: (question, harmful answer) rows in, one batched rewrite, rewritten answers out."""

from __future__ import annotations

import json

import triton_python_backend_utils as pb_utils

from mllm_protector.detox import Detoxifier, hazard_category
from mllm_protector.tensors import InputError, batch_rows, string_tensor, strings_per_row
from mllm_protector.triton_params import model_parameters, resolve_path


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = model_parameters(json.loads(args["model_config"]))
        self.detoxifier = Detoxifier(
            resolve_path(params["weights_dir"], args["model_repository"]),
            max_new_tokens=int(params.get("max_new_tokens") or 128),
            rows_per_generate=int(params.get("rows_per_generate") or 0) or None,
        )

    def execute(self, requests: list) -> list:
        parsed: list[tuple[list[str], list[str], bool, list[str | None]] | InputError] = []
        for request in requests:
            try:
                answers = _input(request, "response")
                rows = batch_rows(answers) or 1
                questions = strings_per_row(_input(request, "text_input"), "text_input", rows, required=False)
                categories = [hazard_category(c) for c in
                              strings_per_row(_input(request, "harm_category"), "harm_category", rows, required=False)]
                parsed.append((questions, strings_per_row(answers, "response", rows), strict_parameter(request),
                               categories))
            except InputError as e:
                parsed.append(e)
        batch = [p for p in parsed if isinstance(p, tuple)]
        rewrites = iter(self.detoxifier.rewrite(
            [q for qs, _, _, _ in batch for q in qs],
            [a for _, answers, _, _ in batch for a in answers],
            [strict for _, answers, strict, _ in batch for _ in answers],
            [c for _, _, _, categories in batch for c in categories],
        ))
        responses = []
        for p in parsed:
            if isinstance(p, InputError):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(p))))
                continue
            texts = string_tensor([next(rewrites) for _ in p[1]])
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("text_output", texts)]))
        return responses


def strict_parameter(request) -> bool:
    """Request parameter `strict` (bool): use the stricter retry prompt."""
    value = json.loads(request.parameters() or "{}").get("strict", False)
    if not isinstance(value, bool):
        raise InputError(f"request parameter strict must be a boolean, got {value!r}")
    return value


def _input(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
