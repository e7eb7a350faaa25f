"""harm_tokenizer: STRING text_input / response -> INT64 input_ids / attention_mask / token_type_ids.

Thin adapter: the whole Triton batch goes through one `detector_serving.encode_requests` call (one `encode_windows`);
a request with a missing `response` or invalid UTF-8 fails alone.
"""

import json
import os
from pathlib import Path

# This stub process only tokenises: keep transformers from importing torch (model load ~4x faster, less memory).
os.environ.setdefault("USE_TORCH", "0")

import triton_python_backend_utils as pb_utils  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from mllm_protector.detector_serving import PROMPT_INPUT, RESPONSE_INPUT, encode_requests  # noqa: E402
from mllm_protector.triton_params import model_parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(json.loads(args["model_config"]))
        self.pad_to_multiple_of = int(params.get("pad_to_multiple_of") or 1)
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.tokenizer = AutoTokenizer.from_pretrained(version_dir / (params.get("tokenizer_dir") or "tokenizer"))

    def execute(self, requests):
        inputs = [
            {name: _numpy(pb_utils.get_input_tensor_by_name(r, name)) for name in (PROMPT_INPUT, RESPONSE_INPUT)}
            for r in requests
        ]
        responses = []
        for result in encode_requests(self.tokenizer, inputs, self.pad_to_multiple_of):
            if isinstance(result, Exception):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result))))
            else:
                tensors = [pb_utils.Tensor(name, arr) for name, arr in result.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses


def _numpy(tensor):
    return None if tensor is None else tensor.as_numpy()
