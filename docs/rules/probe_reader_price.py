"""Session 37 (information): what the exported probe reader costs next to the served classifier, one run on this CPU.

    python docs/rules/probe_reader_price.py   (~2 min; 2 threads, batch 8 of random token ids, full attention)

Rows: the served int8 classifier as harm_classifier runs it (`OnnxClassifier`: each pair alone), the fp32 classifier
(one run per batch), the probe reader's ONNX graph (`export/detector_probe.py`, fp32, one run per batch) and the same
cut SmolLM2 in PyTorch eager; seconds per batch and the ratio to the int8 classifier.
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backbone_price  # noqa: E402

from mllm_protector.export import detector_onnx, detector_probe  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier  # noqa: E402
from mllm_protector.probe_reader import ProbeReader  # noqa: E402

BATCH = 8


def seconds(fn) -> float:
    return backbone_price.seconds(fn, repeats=3)


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(37)
    repo = detector_onnx.DEFAULT_MODEL_REPOSITORY
    int8 = OnnxClassifier(detector_onnx.served_int8_path(repo), intra_op_threads=2)
    fp32 = OnnxClassifier(detector_onnx.served_model_path(repo), intra_op_threads=2)
    reader = ProbeReader(detector_probe.build(), detector_probe.tokenizer_dir(), None, intra_op_threads=2)
    module = detector_probe.pooled_states_module()
    print("| tokens | int8 classifier (served) s | fp32 classifier s | probe reader ONNX fp32 s (x int8) | "
          "probe reader PyTorch eager s (ONNX speed-up) |\n|---|---|---|---|---|")
    for length in (128, 256, 384):
        ids = rng.integers(1000, 20000, size=(BATCH, length))
        mask = np.ones_like(ids)
        t_int8, t_fp32, t_onnx, t_eager = timings(int8, fp32, reader, module, ids, mask)
        print(f"| {length} | {t_int8:.3f} | {t_fp32:.3f} | {t_onnx:.3f} ({t_onnx / t_int8:.1f}x) | "
              f"{t_eager:.3f} ({t_eager / t_onnx:.2f}x) |")


def timings(int8, fp32, reader, module, ids, mask) -> tuple[float, float, float, float]:
    cls = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    t_int8, t_fp32 = seconds(lambda: int8.run(cls)), seconds(lambda: fp32.run(cls))
    t_onnx = seconds(lambda: reader.session.run(None, {"input_ids": ids, "attention_mask": mask}))
    with torch.inference_mode():
        t_eager = seconds(lambda: module(torch.from_numpy(ids), torch.from_numpy(mask)))
    return t_int8, t_fp32, t_onnx, t_eager

if __name__ == "__main__":
    main()
