"""mllm: (prompt, optional image, optional max_tokens) rows in, one batched `generate` for the whole batch, answers out.

Which model answers is a config parameter: `model_path` names a Hugging Face image-text-to-text folder (LLaVA-1.5,
Qwen2.5-VL, ...); empty selects the CPU stand-in (OCR text + SmolLM2-Instruct, see mllm_protector.mllm).
"""

from __future__ import annotations

import json

import triton_python_backend_utils as pb_utils

from mllm_protector.mllm import MllmSettings, load_mllm, parse_mllm_request
from mllm_protector.tensors import InputError, string_tensor
from mllm_protector.triton_params import model_parameters

INPUTS = ("text_input", "image", "max_tokens")


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.settings = MllmSettings.from_parameters(model_parameters(json.loads(args["model_config"])))
        model_dir = args["model_repository"]
        device = None
        if args.get("model_instance_kind") == "GPU":
            device = f"cuda:{args.get('model_instance_device_id', 0)}"
        model_path = self.settings.resolved_model_path(model_dir)
        self.backend = load_mllm(
            model_path,
            self.settings.resolved_weights_dir(model_dir),
            device=device,
            threads=self.settings.threads or None,
        )
        pb_utils.Logger.log_info(
            f"mllm: {type(self.backend).__name__} from {model_path or self.settings.resolved_weights_dir(model_dir)}"
        )

    def execute(self, requests: list) -> list:
        parsed: list[list | Exception] = []
        for request in requests:
            try:
                parsed.append(parse_mllm_request({name: _input(request, name) for name in INPUTS}, self.settings))
            except InputError as e:
                parsed.append(e)
        rows = [row for p in parsed if isinstance(p, list) for row in p]
        answers: list[str] | Exception = []
        if rows:
            try:
                answers = self.backend.generate(
                    [r.prompt for r in rows], [r.image for r in rows], [r.max_tokens for r in rows]
                )
            except Exception as e:  # the model failed for the batch: every valid request gets the reason
                answers = RuntimeError(f"mllm generation failed: {type(e).__name__}: {e}")
        answer_iter = iter(answers) if isinstance(answers, list) else None
        responses = []
        for p in parsed:
            if isinstance(p, Exception):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(p))))
            elif answer_iter is None:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(answers))))
            else:
                texts = string_tensor([next(answer_iter) for _ in p])
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("text_output", texts)]))
        return responses

    def finalize(self) -> None:
        self.backend = None


def _input(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()
