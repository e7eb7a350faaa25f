"""The guard's three calls (generate, score, rewrite) as BLS requests to the other models of this repository."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import triton_python_backend_utils as pb_utils

from mllm_protector.detector_text import detector_requests
from mllm_protector.guard import GuardRequest, Scores


def _strings(name: str, values: Sequence[str | bytes]) -> pb_utils.Tensor:
    rows = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    return pb_utils.Tensor(name, np.array(rows, dtype=np.object_).reshape(-1, 1))


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


class BlsCalls:
    def __init__(self, mllm: str, detector: str, detoxifier: str, rewrite_timeout_s: float = 0.0) -> None:
        """`rewrite_timeout_s` > 0 also bounds how long a detoxifier request may wait in that model's queue: the
        guard gives up on a rewrite after that long anyway, so a request still queued then is rejected by Triton
        (the detoxifier's queue policy) instead of burning CPU on an answer nobody reads."""
        self.mllm = mllm
        self.detector = detector
        self.detoxifier = detoxifier
        self.rewrite_timeout_us = int(rewrite_timeout_s * 1e6)

    async def _infer(self, model: str, inputs: list[pb_utils.Tensor], output: str, **kwargs) -> np.ndarray:
        return (await self._infer_all(model, inputs, [output], **kwargs))[0].reshape(-1)

    async def _infer_all(self, model: str, inputs: list[pb_utils.Tensor], outputs: list[str],
                         parameters: dict | None = None, timeout_us: int = 0) -> list[np.ndarray]:
        # a failure is raised; the guard reports the ones it absorbs (Guard.on_call_error, logged by model.py)
        extra = {} if parameters is None else {"parameters": parameters}
        if timeout_us > 0:
            extra["timeout"] = timeout_us
        request = pb_utils.InferenceRequest(model_name=model, requested_output_names=outputs, inputs=inputs, **extra)
        response = await request.async_exec()
        if response.has_error():
            raise RuntimeError(f"{model}: {response.error().message()}")
        return [pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in outputs]

    async def generate(self, request: GuardRequest) -> str:
        """One MLLM call per request; the protector awaits them together so `mllm` batches them."""
        inputs = [_strings("text_input", [request.prompt])]
        if request.image is not None:
            inputs.append(_strings("image", [request.image]))
        if request.max_tokens is not None:
            inputs.append(pb_utils.Tensor("max_tokens", np.array([[request.max_tokens]], dtype=np.int32)))
        return _decode((await self._infer(self.mllm, inputs, "text_output"))[0])

    async def score(self, prompts: Sequence[str], responses: Sequence[str]) -> Scores:
        """Harm scores and hazard categories: the short answers of the batch in one detector request, each long one
        in its own (`detector_requests`), awaited together."""
        groups = detector_requests(responses)
        parts = await asyncio.gather(*(self._score_rows([prompts[i] for i in g], [responses[i] for i in g])
                                       for g in groups))
        harm: list[float] = [0.0] * len(responses)
        categories: list[list[float]] = [[] for _ in responses]
        for group, (h, c) in zip(groups, parts, strict=True):
            for k, i in enumerate(group):
                harm[i], categories[i] = float(h[k]), c[k]
        return Scores(harm=harm, categories=categories)

    async def _score_rows(self, prompts: list[str], responses: list[str]) -> tuple[np.ndarray, list]:
        inputs = [_strings("text_input", prompts), _strings("response", responses)]
        harm, categories = await self._infer_all(self.detector, inputs, ["harm_score", "harm_categories"])
        return harm.reshape(-1), categories.tolist()

    async def rewrite(self, prompts: Sequence[str], responses: Sequence[str], strict: bool = False,
                      categories: Sequence[str | None] = ()) -> list[str]:
        """Only the flagged answers, one detoxifier request each, awaited together so that the detoxifier's batcher
        batches them (as `generate` does for `mllm`): one request of more rows than its max_batch_size would be
        rejected whole, and a protector request may flag up to its own max_batch_size (32) answers. `strict`: the
        retry's stricter prompt; `categories`: the detector's hazard category of each answer (None: it gave none)."""
        rows = zip(prompts, responses, list(categories) or [None] * len(responses), strict=True)
        return list(await asyncio.gather(*(self._rewrite_one(p, r, c, strict, bool(categories)) for p, r, c in rows)))

    async def _rewrite_one(self, prompt: str, response: str, category: str | None, strict: bool,
                           with_category: bool) -> str:
        inputs = [_strings("text_input", [prompt]), _strings("response", [response])]
        if with_category:
            inputs.append(_strings("harm_category", [category or ""]))
        texts = await self._infer(self.detoxifier, inputs, "text_output", parameters={"strict": strict},
                                  timeout_us=self.rewrite_timeout_us)
        return _decode(texts[0])
