"""harm_classifier (CPU): INT64 input_ids / attention_mask / token_type_ids -> FP32 harm_score, via onnxruntime.

Thin adapter over `mllm_protector.onnx_classifier.OnnxClassifier`: the Triton batch (requests of any sequence length)
is padded into one array and scored with one `session.run`; a malformed request fails alone.
"""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils

from mllm_protector.onnx_classifier import FEATURES, OnnxClassifier
from mllm_protector.triton_params import model_parameters


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(json.loads(args["model_config"]))
        version_dir = Path(args["model_repository"]) / args["model_version"]
        model_path = version_dir / (params.get("model_filename") or "model.onnx")
        if not model_path.exists():
            raise pb_utils.TritonModelException(
                f"{model_path} is missing: build it with `python -m mllm_protector.export.detector_onnx`"
            )
        self.classifier = OnnxClassifier(
            model_path,
            intra_op_threads=int(params.get("intra_op_thread_count") or 0),
            inter_op_threads=int(params.get("inter_op_thread_count") or 0),
        )

    def execute(self, requests):
        inputs = [{name: _numpy(pb_utils.get_input_tensor_by_name(r, name)) for name in FEATURES} for r in requests]
        responses = []
        for result in self.classifier.score_requests(inputs):
            if isinstance(result, Exception):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result))))
            else:
                tensors = [pb_utils.Tensor(name, arr) for name, arr in result.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses


def _numpy(tensor):
    return None if tensor is None else tensor.as_numpy()
