"""`mllm-protector-export`: builds every served artifact from packaged base weights (nothing from a hub).

- artifacts/smollm2-135m-instruct/      SmolLM2-135M-Instruct for the `mllm` stand-in
- artifacts/detoxifier/                 the same with the committed detoxifier LoRA (weights/detoxifier) merged in
- artifacts/detoxifier/genai/           its onnxruntime-genai build, 8-bit weights, for the CPU
- model_repository/harm_classifier/1/   the trained detector as ONNX (base MiniLM + committed weights/harm_detector)
- model_repository/harm_tokenizer/1/    its tokenizer
Each step skips itself when its output is up to date, so a second run is fast.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--gpu-only", action="store_true",
                        help="skip the CPU-only builds (the detoxifier's onnxruntime-genai build): the GPU image")
    args = parser.parse_args(argv)

    from mllm_protector.export import detector_onnx, detoxifier, smollm2

    base = args.artifacts / "smollm2-135m-instruct"
    for name, step in [
        ("smollm2", lambda: smollm2.build(base)),
        ("detoxifier", lambda: detoxifier.build(base, args.artifacts / "detoxifier", cpu_build=not args.gpu_only)),
        ("harm detector onnx", lambda: detector_onnx.build(args.model_repository, args.artifacts / "detector")),
    ]:
        start = time.perf_counter()
        out = step()
        print(f"[export] {name}: {out} ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
