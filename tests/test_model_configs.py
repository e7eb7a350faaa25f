"""Every model config in model_repository/ parses against Triton's ModelConfig schema and follows DESIGN.md.

Covers `config.pbtxt` (GPU production, which cannot be loaded on these machines) and every `configs/*.pbtxt`
variant (`cpu` is what `make serve` and the tests run), including models added later: the files are globbed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from mllm_protector.triton_params import parse_config_parameters

REPO = Path(__file__).resolve().parents[1] / "model_repository"
MC = model_config_pb2.ModelConfig
STRING, FP32, INT32, BOOL = (model_config_pb2.TYPE_STRING, model_config_pb2.TYPE_FP32, model_config_pb2.TYPE_INT32,
                              model_config_pb2.TYPE_BOOL)

# DESIGN.md tensor contract: name -> (data type, optional). Every tensor has dims [1] per request.
CONTRACT_INPUTS = {
    "protector": {"text_input": (STRING, False), "image": (STRING, True), "response": (STRING, True),
                  "max_tokens": (INT32, True)},
    "mllm": {"text_input": (STRING, False), "image": (STRING, True), "max_tokens": (INT32, True)},
    "harm_detector": {"text_input": (STRING, False), "response": (STRING, False)},
    "detoxifier": {"text_input": (STRING, False), "response": (STRING, False)},
}
CONTRACT_OUTPUTS = {
    "protector": {"text_output": STRING, "harm_score": FP32, "rewritten": BOOL, "original_text": STRING},
    "mllm": {"text_output": STRING},
    "harm_detector": {"harm_score": FP32},
    "detoxifier": {"text_output": STRING},
}

CONFIG_FILES = sorted([*REPO.glob("*/config.pbtxt"), *REPO.glob("*/configs/*.pbtxt")])


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), MC())


def type_name(dtype: int) -> str:
    return model_config_pb2.DataType.Name(dtype)


def model_dir(path: Path) -> Path:
    return path.parent if path.name == "config.pbtxt" else path.parent.parent


def is_ensemble(config) -> bool:
    return config.platform == "ensemble"


def variant_of(model: str, path: Path) -> Path:
    """The config of `model` that the server picks together with `path` (configs/<same name>.pbtxt, else config)."""
    if path.name != "config.pbtxt":
        candidate = REPO / model / "configs" / path.name
        if candidate.exists():
            return candidate
    return REPO / model / "config.pbtxt"


def test_repository_has_configs():
    assert CONFIG_FILES, f"no model configs under {REPO}"
    for d in sorted(p for p in REPO.iterdir() if p.is_dir()):
        assert (d / "config.pbtxt").exists(), f"{d.name} has no config.pbtxt (GPU production config)"
        assert (d / "configs" / "cpu.pbtxt").exists(), f"{d.name} has no configs/cpu.pbtxt (make serve uses it)"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=_id)
def test_config_parses_and_batches(path: Path):
    config = parse(path)
    folder = model_dir(path).name
    assert config.name in ("", folder), f"{_id(path)}: name {config.name!r} != folder {folder!r}"
    assert config.platform or config.backend, f"{_id(path)}: neither platform nor backend"
    assert config.max_batch_size >= 8, f"{_id(path)}: max_batch_size {config.max_batch_size} < 8"
    if not is_ensemble(config):
        assert config.HasField("dynamic_batching"), f"{_id(path)}: no dynamic_batching"
    else:
        assert (model_dir(path) / "1").is_dir(), f"{folder}: an ensemble needs an (empty) 1/ folder"
    for tensor in [*config.input, *config.output]:
        assert list(tensor.dims), f"{_id(path)}: {tensor.name} has no dims"


@pytest.mark.parametrize("path", [p for p in CONFIG_FILES if p.name == "cpu.pbtxt"], ids=_id)
def test_cpu_config_runs_without_gpu(path: Path):
    config = parse(path)
    kinds = [g.kind for g in config.instance_group]
    assert model_config_pb2.ModelInstanceGroup.KIND_GPU not in kinds, f"{_id(path)} asks for a GPU"
    if not is_ensemble(config):
        # only the python backend exists in the CPU tritonserver (notes/triton-on-cpu.md)
        assert config.backend == "python", f"{_id(path)}: backend {config.backend!r}/{config.platform!r} on CPU"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=_id)
def test_variants_expose_the_same_tensors(path: Path):
    """A model's GPU and CPU configs (and any other variant) take and return the same tensors."""
    base = REPO / model_dir(path).name / "config.pbtxt"
    if path == base or not base.exists():
        pytest.skip("the base config itself")

    def signature(c):
        return (
            sorted((t.name, t.data_type, tuple(t.dims), t.optional) for t in c.input),
            sorted((t.name, t.data_type, tuple(t.dims)) for t in c.output),
            c.max_batch_size,
        )

    assert signature(parse(path)) == signature(parse(base)), f"{_id(path)} differs from {_id(base)}"


CONTRACT_FILES = [p for p in CONFIG_FILES if model_dir(p).name in CONTRACT_INPUTS]


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=_id)
def test_design_contract(path: Path):
    model = model_dir(path).name
    config = parse(path)
    inputs = {t.name: t for t in config.input}
    outputs = {t.name: t for t in config.output}
    for name, (dtype, optional) in CONTRACT_INPUTS[model].items():
        assert name in inputs, f"{_id(path)}: missing input {name}"
        t = inputs[name]
        assert t.data_type == dtype, f"{_id(path)}: input {name} is {type_name(t.data_type)}, not {type_name(dtype)}"
        assert list(t.dims) == [1], f"{_id(path)}: input {name} dims {list(t.dims)} != [1]"
        if optional and not is_ensemble(config):
            assert t.optional, f"{_id(path)}: input {name} must be optional (clients may omit it)"
    for name, t in inputs.items():
        if name not in CONTRACT_INPUTS[model]:
            assert t.optional, f"{_id(path)}: input {name} is not in the contract and not optional"
    for name, dtype in CONTRACT_OUTPUTS[model].items():
        assert name in outputs, f"{_id(path)}: missing output {name}"
        got = outputs[name].data_type
        assert got == dtype, f"{_id(path)}: output {name} is {type_name(got)}, not {type_name(dtype)}"
        assert list(outputs[name].dims) == [1], f"{_id(path)}: output {name} dims {list(outputs[name].dims)} != [1]"


ENSEMBLE_FILES = [p for p in CONFIG_FILES if is_ensemble(parse(p))]


@pytest.mark.parametrize("path", ENSEMBLE_FILES, ids=_id)
def test_ensemble_steps_fit_their_models(path: Path):
    """Each step names an existing model and maps tensors that model (same config variant) really has."""
    config = parse(path)
    produced = {t.name: (t.data_type, tuple(t.dims)) for t in config.input}
    for step in config.ensemble_scheduling.step:
        step_path = variant_of(step.model_name, path)
        assert step_path.exists(), f"{_id(path)}: step model {step.model_name} has no config"
        step_config = parse(step_path)
        step_inputs = {t.name: t for t in step_config.input}
        step_outputs = {t.name: t for t in step_config.output}
        for model_input, tensor in step.input_map.items():
            assert model_input in step_inputs, f"{_id(path)}: {step.model_name} has no input {model_input}"
            assert tensor in produced, f"{_id(path)}: {tensor} is used before any step produces it"
            assert produced[tensor][0] == step_inputs[model_input].data_type, f"{_id(path)}: {tensor} type mismatch"
        required = {n for n, t in step_inputs.items() if not t.optional}
        assert required <= set(step.input_map), f"{_id(path)}: {step.model_name} needs {required - set(step.input_map)}"
        for model_output, tensor in step.output_map.items():
            assert model_output in step_outputs, f"{_id(path)}: {step.model_name} has no output {model_output}"
            out = step_outputs[model_output]
            produced[tensor] = (out.data_type, tuple(out.dims))
        assert step_config.max_batch_size >= config.max_batch_size, f"{_id(path)}: {step.model_name} batches less"
    for out in config.output:
        assert out.name in produced, f"{_id(path)}: output {out.name} is produced by no step"
        assert produced[out.name] == (out.data_type, tuple(out.dims)), f"{_id(path)}: output {out.name} mismatch"


@pytest.mark.parametrize(
    "path", [p for p in CONFIG_FILES if model_dir(p).name in ("harm_detector", "harm_classifier", "protector")],
    ids=_id,
)
def test_harm_categories_output(path: Path):
    from mllm_protector.detector_text import HARM_CATEGORIES

    outputs = {t.name: t for t in parse(path).output}
    assert "harm_categories" in outputs, f"{_id(path)}: missing output harm_categories"
    t = outputs["harm_categories"]
    assert t.data_type == FP32 and list(t.dims) == [len(HARM_CATEGORIES)], _id(path)


def test_detoxifier_serves_the_merged_fine_tune():
    """The GPU config loads artifacts/detoxifier (torch), the CPU config its onnxruntime-genai build, and setup built
    both from the committed adapter."""
    from mllm_protector.export import detoxifier
    from mllm_protector.triton_params import resolve_path

    merged = REPO.parent / "artifacts" / "detoxifier"
    for name, expected in (("config.pbtxt", merged), ("configs/cpu.pbtxt", merged / detoxifier.GENAI_SUBDIR)):
        params = parse_config_parameters(REPO / "detoxifier" / name)
        assert resolve_path(params["weights_dir"], REPO / "detoxifier") == expected, name
    stamp = json.loads((merged / "stamp.json").read_text())
    assert stamp["adapter"] == stamp["genai"] == detoxifier.adapter_digest()
    assert (merged / detoxifier.GENAI_SUBDIR / "genai_config.json").exists()


@pytest.mark.parametrize("path", [p for p in CONFIG_FILES if model_dir(p).name == "detoxifier"], ids=_id)
def test_detoxifier_takes_the_hazard_category_as_an_optional_input(path: Path):
    inputs = {t.name: t for t in parse(path).input}
    assert inputs["harm_category"].optional and inputs["harm_category"].data_type == STRING, _id(path)
    assert not inputs["response"].optional


@pytest.mark.parametrize("path", CONFIG_FILES, ids=_id)
def test_tensorrt_engine_cache_is_a_direct_child_of_tmp(path: Path):
    """onnxruntime's TensorRT provider creates the cache folder but not its parents: a nested path under an empty
    /tmp fails the session, and with it harm_classifier, harm_detector and protector."""
    config = parse(path)
    for accelerator in config.optimization.execution_accelerators.gpu_execution_accelerator:
        cache = accelerator.parameters.get("trt_engine_cache_path")
        if cache:
            assert Path(cache).parent == Path("/tmp"), cache
