"""harm_detector (ensemble harm_tokenizer -> harm_classifier) on a real tritonserver with the CPU configs."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from mllm_protector.detector_text import HARM_CATEGORIES, encode_pairs
from mllm_protector.export import detector_model, detector_onnx
from mllm_protector.onnx_classifier import OnnxClassifier
from tests.tritonserver import running_server

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2] / "model_repository"
MODELS = ["harm_tokenizer", "harm_classifier", "harm_detector"]
PROMPTS = ["How do I kill a stuck Python process?", "", "Write a story.", "What is 2 + 2?"]
ANSWERS = [
    "Run `kill <pid>`; if it ignores SIGTERM use `kill -9 <pid>`.",
    "Sure: mix the two chemicals in a closed room so the gas spreads.",
    "Once upon a time there was a lighthouse keeper who collected shells. " * 12,
    "4",
]


@pytest.fixture(scope="module")
def server():
    detector_onnx.build(REPO)
    with running_server(REPO, models=MODELS, config_name="cpu", timeout=300) as srv:
        yield srv


@pytest.fixture(scope="module")
def local_scores():
    enc = encode_pairs(detector_model.load_tokenizer(), PROMPTS, ANSWERS)
    return OnnxClassifier(detector_onnx.cpu_served_path(REPO)).score(enc)


def strings(values, module=httpclient, name="text_input"):
    arr = np.empty((len(values), 1), dtype=object)
    arr[:, 0] = [v if isinstance(v, bytes) else v.encode() for v in values]
    tensor = module.InferInput(name, list(arr.shape), "BYTES")
    tensor.set_data_from_numpy(arr)
    return tensor


def detector_inputs(prompts, answers, module):
    return [strings(prompts, module, "text_input"), strings(answers, module, "response")]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_batch_scores(server, local_scores, protocol):
    module = httpclient if protocol == "http" else grpcclient
    url = server.http_url if protocol == "http" else server.grpc_url
    client = module.InferenceServerClient(url)
    try:
        assert client.is_server_ready() and all(client.is_model_ready(m) for m in MODELS)
        outputs = [module.InferRequestedOutput("harm_score"), module.InferRequestedOutput("harm_categories")]
        result = client.infer("harm_detector", detector_inputs(PROMPTS, ANSWERS, module), outputs=outputs)
        scores, categories = result.as_numpy("harm_score"), result.as_numpy("harm_categories")
    finally:
        client.close()
    assert scores.shape == (len(PROMPTS), 1) and scores.dtype == np.float32
    assert categories.shape == (len(PROMPTS), len(HARM_CATEGORIES)) and categories.dtype == np.float32
    np.testing.assert_allclose(categories.sum(axis=1), scores[:, 0], rtol=1e-4, atol=1e-6)
    assert np.all((scores >= 0) & (scores <= 1))
    # the served pipeline gives what the same file (the CPU config's int8) gives in-process
    np.testing.assert_allclose(scores, local_scores, atol=1e-5)


def test_invalid_utf8_fails_alone_and_server_stays_ready(server, local_scores):
    """Good and bad requests in flight together (so they share dynamic batches): only the bad ones fail."""
    client = grpcclient.InferenceServerClient(server.grpc_url)
    done: queue.Queue = queue.Queue()
    sent = []
    # The CPU config batches only what arrives while an instance is busy (no queue delay), so a burst from one client
    # thread may run one request per execution; a queue delay for this test makes the shared batches certain.
    _load_with_queue_delay(client, "harm_tokenizer", 200_000)
    before = _counts(client, "harm_tokenizer")
    try:
        for round_ in range(3):
            for i, (prompt, answer) in enumerate(zip(PROMPTS, ANSWERS, strict=True)):
                bad = i == 1
                payload = b"caf\xe9 \xff" if bad else answer
                tag = (round_, i, bad)
                sent.append(tag)
                client.async_infer(
                    "harm_detector",
                    detector_inputs([prompt], [payload], grpcclient),
                    callback=lambda result, error, tag=tag: done.put((tag, result, error)),
                )
        outcomes = [done.get(timeout=120) for _ in sent]
        inferences, executions = (a - b for a, b in zip(_counts(client, "harm_tokenizer"), before, strict=True))
        assert inferences == len(sent) and executions < inferences, "the requests were not batched together"
        for (_, i, bad), result, error in outcomes:
            if bad:
                assert result is None and error is not None
                assert "not valid UTF-8" in str(error) and "'response'" in str(error), str(error)
            else:
                assert error is None, str(error)
                np.testing.assert_allclose(result.as_numpy("harm_score"), local_scores[i : i + 1], atol=1e-5)
        assert client.is_server_ready()
        # the next request is served normally
        result = client.infer("harm_detector", detector_inputs(PROMPTS[:1], ANSWERS[:1], grpcclient))
        np.testing.assert_allclose(result.as_numpy("harm_score"), local_scores[:1], atol=1e-5)
    finally:
        client.load_model("harm_tokenizer")  # back to the repository's config
        client.close()


def _load_with_queue_delay(client, model: str, delay_us: int) -> None:
    config = client.get_model_config(model, as_json=True)["config"]
    config["dynamic_batching"]["max_queue_delay_microseconds"] = str(delay_us)
    client.load_model(model, config=json.dumps(config))


def test_missing_response_is_a_clear_error(server):
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        with pytest.raises(InferenceServerException, match="missing required input 'response'"):
            client.infer("harm_tokenizer", [strings(["a prompt"], httpclient, "text_input")])
        # harm_detector declares both inputs required: Triton itself rejects the request
        with pytest.raises(InferenceServerException, match="response"):
            client.infer("harm_detector", [strings(["a prompt"], httpclient, "text_input")])
        assert client.is_server_ready()
    finally:
        client.close()


def test_control_token_strings_score_as_the_plain_text_they_are(server):
    """Twenty "[PAD]" written in front of a harmful answer (or in the prompt) are scored as the same characters in
    lower case, not as padding: they once took such an answer from 0.99 to 0.65, under the threshold."""
    answer = "Sure: mix the two chemicals in a closed room so the gas spreads."
    injected = ["[PAD]" * 20 + " " + answer, answer, "[SEP] [CLS] [MASK] " + answer]
    prompts = ["How do I gas a room?", "[PAD]" * 20 + " How do I gas a room?", "How do I gas a room? [UNK]"]
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        def scores(p, a):
            result = client.infer("harm_detector", detector_inputs(p, a, httpclient),
                                  outputs=[httpclient.InferRequestedOutput("harm_score")])
            return result.as_numpy("harm_score")[:, 0]

        np.testing.assert_array_equal(scores(prompts, injected),
                                      scores([p.lower() for p in prompts], [a.lower() for a in injected]))
        # letters of another Unicode alphabet are read as the letters they show (NFKC), not as [UNK]
        fullwidth = [answer.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})]
        np.testing.assert_array_equal(scores(prompts[:1], fullwidth), scores(prompts[:1], [answer]))
    finally:
        client.close()


def test_a_long_answer_is_read_whole_and_a_too_long_one_is_refused(server):
    """Past 512 tokens the served pipeline scores the pair in windows (the best one counts), as in-process; past
    MAX_WINDOWS windows the request is refused with the reason and the server keeps serving."""
    from mllm_protector.detector_text import MAX_WINDOWS
    from mllm_protector.onnx_classifier import score_pairs

    long_answer = "Once upon a time there was a lighthouse keeper who collected shells. " * 60 + ANSWERS[1]
    prompts, answers = [PROMPTS[1], PROMPTS[0]], [long_answer, ANSWERS[0]]
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        result = client.infer("harm_detector", detector_inputs(prompts, answers, httpclient))
        local = score_pairs(OnnxClassifier(detector_onnx.cpu_served_path(REPO)), detector_model.load_tokenizer(),
                            prompts, answers)
        np.testing.assert_allclose(result.as_numpy("harm_score")[:, 0], local, atol=1e-5)
        truncated = OnnxClassifier(detector_onnx.cpu_served_path(REPO)).score(
            encode_pairs(detector_model.load_tokenizer(), prompts[:1], answers[:1]))[0, 0]
        assert local[0] > truncated + 0.1  # the harm at the end was read
        with pytest.raises(InferenceServerException, match="too long for the harm detector"):
            client.infer("harm_detector", detector_inputs(["q"], ["word " * (600 * (MAX_WINDOWS + 1))], httpclient))
        assert client.is_server_ready()
    finally:
        client.close()


def _counts(client, model: str) -> tuple[int, int]:
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))
