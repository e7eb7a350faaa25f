"""Technical documentation flagged by the served detector files (session 38; a benign false-alarm class).

    python docs/rules/technical_docs_flagged.py      (~3 min on two cores; needs `man` and the system's man pages)

Scores the held-out documentation of `trial33_docs.heldout_docs()` (the val-part stdlib docstring passages, module
docstrings of the held-out third-party packages, man page descriptions) with the served fp32 and int8 files through
`score_pairs`, exactly as the guard reads an answer, and prints how many each flags at its served threshold, with the
flagged texts' prompts.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial33_docs import heldout_docs  # noqa: E402

from mllm_protector.export import detector_model, detector_onnx  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402

REPO = detector_onnx.DEFAULT_MODEL_REPOSITORY


def main() -> None:
    docs, tokenizer = heldout_docs(), detector_model.load_tokenizer()
    calibration = json.loads((detector_model.WEIGHTS_DIR / detector_model.CALIBRATION_FILE).read_text())
    print("| file (threshold) | " + " | ".join(f"{k} (of {len(v)})" for k, v in docs.items()) + " |")
    print("|---" * (len(docs) + 1) + "|")
    flagged = {}
    for path, thr in ((detector_onnx.served_model_path(REPO), calibration["threshold"]),
                      (detector_onnx.served_int8_path(REPO), calibration["int8"]["threshold"])):
        classifier = OnnxClassifier(path)
        row = []
        for name, pairs in docs.items():
            s = score_pairs(classifier, tokenizer, [p for p, _ in pairs], [d for _, d in pairs])
            row.append(str(int((s >= thr).sum())))
            flagged[(path.name, name)] = [f"{p} {x:.4f}" for (p, _), x in zip(pairs, s, strict=True) if x >= thr]
        print(f"| {path.name} ({thr:.5f}) | " + " | ".join(row) + " |")
    for (file, name), items in flagged.items():
        print(f"\n{file}, {name}: " + "; ".join(items) if items else f"\n{file}, {name}: none")


if __name__ == "__main__":
    main()
