"""Build an FP16 TensorRT engine (`model.plan`) for the harm classifier from the served `model.onnx`.

Runs where TensorRT and an NVIDIA GPU are (the NGC `tritonserver:24.10-py3` or TensorRT container, TensorRT 10.x):

    python -m mllm_protector.export.tensorrt_engine          # -> model_repository/harm_classifier/1/model.plan
    python -m mllm_protector.export.tensorrt_engine --time   # and time it at a few shapes (needs torch + CUDA)

One optimisation profile covers what Triton sends: batch 1..64 x sequence 1..4096 (opt 16 x 128; a row past 512
tokens is whole 512-token windows of one long answer, at most `detector_text.MAX_WINDOWS`). The engine is
specific to the GPU model and TensorRT version, so it is built on the deployment GPU, never committed. Serve it with
`--model-config-name=tensorrt` (harm_classifier/configs/tensorrt.pbtxt, platform tensorrt_plan); the default GPU
config instead runs model.onnx on onnxruntime with the TensorRT accelerator, which builds an equivalent engine itself.
On a machine without TensorRT the script exits with status 2 and says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_DIR = ROOT / "model_repository" / "harm_classifier" / "1"
DEFAULT_ONNX = VERSION_DIR / "model.onnx"
DEFAULT_PLAN = VERSION_DIR / "model.plan"

# (min, opt, max) per dynamic axis
BATCH = (1, 16, 64)
SEQUENCE = (1, 128, 4096)  # max: detector_text.MAX_LENGTH * MAX_WINDOWS


class TensorRTUnavailable(RuntimeError):
    pass


def import_tensorrt():
    """The `tensorrt` module, imported only when an engine is really built."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(
            f"TensorRT is not installed here ({exc}). Build the engine on the deployment GPU, e.g. inside "
            "nvcr.io/nvidia/tritonserver:24.10-py3 (pip install tensorrt==10.5.* if the image lacks the Python "
            "bindings), with an NVIDIA GPU visible."
        ) from None
    return trt


def build_engine(
    onnx_path: Path,
    plan_path: Path,
    batch: tuple[int, int, int] = BATCH,
    sequence: tuple[int, int, int] = SEQUENCE,
    fp16: bool = True,
    workspace_gib: float = 2.0,
    fp32_normalization: bool = True,
) -> Path:
    """Parse `onnx_path`, build an engine with one optimisation profile over (batch, sequence), write `plan_path`."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16:
        if not builder.platform_has_fast_fp16:
            print("warning: this GPU has no fast FP16; building anyway", file=sys.stderr)
        config.set_flag(trt.BuilderFlag.FP16)
        if fp32_normalization:
            # LayerNorm / softmax statistics overflow easily in FP16: keep those layers in FP32.
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            keep = {trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX, trt.LayerType.REDUCE}
            for i in range(network.num_layers):
                layer = network.get_layer(i)
                if layer.type in keep:
                    layer.precision = trt.float32

    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        profile.set_shape(tensor.name, *[(b, s) for b, s in zip(batch, sequence, strict=True)])
    config.add_optimization_profile(profile)

    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT engine build failed (see the log above)")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(serialized))
    print(
        f"{plan_path}: {plan_path.stat().st_size / 1e6:.1f} MB, TensorRT {trt.__version__}, fp16={fp16}, "
        f"batch {batch}, sequence {sequence}, built in {time.perf_counter() - start:.1f} s"
    )
    return plan_path


def time_engine(plan_path: Path, shapes=((1, 128), (8, 256), (32, 128), (64, 256)), iters: int = 50) -> None:
    """Latency of the engine at a few (batch, sequence) shapes, with torch CUDA tensors as buffers."""
    trt = import_tensorrt()
    import torch

    if not torch.cuda.is_available():
        raise TensorRTUnavailable("timing needs torch with CUDA")
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan_path.read_bytes())
    context = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    stream = torch.cuda.Stream()
    for b, s in shapes:
        buffers = {}
        for n in inputs:
            buffers[n] = torch.ones((b, s), dtype=torch.int64, device="cuda")
            context.set_input_shape(n, (b, s))
        for n in names:
            if n not in inputs:
                buffers[n] = torch.empty(tuple(context.get_tensor_shape(n)), dtype=torch.float32, device="cuda")
        for n, t in buffers.items():
            context.set_tensor_address(n, t.data_ptr())
        for _ in range(5):
            context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        ms = (time.perf_counter() - start) / iters * 1e3
        print(f"batch {b:3d} x seq {s:3d}: {ms:7.3f} ms/batch, {b / ms * 1e3:9.0f} seq/s")


def _triple(text: str) -> tuple[int, int, int]:
    values = tuple(int(v) for v in text.split(","))
    if len(values) != 3 or not values[0] <= values[1] <= values[2]:
        raise argparse.ArgumentTypeError(f"expected min,opt,max with min <= opt <= max, got {text!r}")
    return values  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, default=DEFAULT_ONNX)
    parser.add_argument("--output", type=Path, default=DEFAULT_PLAN)
    parser.add_argument("--batch", type=_triple, default=BATCH, help="min,opt,max batch (default 1,16,64)")
    parser.add_argument("--sequence", type=_triple, default=SEQUENCE, help="min,opt,max tokens (default 1,128,4096)")
    parser.add_argument("--fp32", action="store_true", help="build in FP32 instead of FP16")
    parser.add_argument("--workspace-gib", type=float, default=2.0)
    parser.add_argument("--time", action="store_true", help="time the engine afterwards (needs torch with CUDA)")
    args = parser.parse_args(argv)
    try:
        import_tensorrt()
        if not args.onnx.exists():
            print(f"error: {args.onnx} not found: run python -m mllm_protector.export.detector_onnx", file=sys.stderr)
            return 1
        plan = build_engine(args.onnx, args.output, args.batch, args.sequence, not args.fp32, args.workspace_gib)
        if args.time:
            time_engine(plan)
    except TensorRTUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
