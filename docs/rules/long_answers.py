"""Session 22: the first 512 tokens against the whole answer in 512-token windows (validation only, no test split).

    python docs/rules/long_answers.py      (~3 min on two cores)

Both readings run through the served graphs: a pair given as `encode_pairs` features is one window, exactly what the
detector read until session 22. Prints, per served file, the threshold each reading calibrates to and the TPR / FPR
there; the harmful validation answers behind >= 450 words of the training split's benign answers; and the Python
standard library's module docstrings under "Explain the Python module X." (a technical-text false-alarm probe).
"""

import importlib
import random
import sys

import numpy as np

from mllm_protector import harm_data
from mllm_protector.detector_text import encode_pairs
from mllm_protector.export import detector_calibrate, detector_model, detector_onnx
from mllm_protector.export import detector_train as dt
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs

REPO = detector_onnx.DEFAULT_MODEL_REPOSITORY


def first_window(classifier, tokenizer, prompts, responses):
    pairs = zip(prompts, responses, strict=True)
    return np.array([classifier.score(encode_pairs(tokenizer, [p], [r]))[0, 0] for p, r in pairs])


def behind(answers, filler, words, seed):
    rng = random.Random(seed)
    out = []
    for answer in answers:
        parts = []
        while sum(len(x.split()) for x in parts) < words:
            parts.append(rng.choice(filler))
        out.append("\n\n".join([*parts, answer]))
    return out


def docstrings():
    out = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in ("antigravity", "this", "idlelib", "turtledemo", "tkinter"):
            continue
        try:
            doc = importlib.import_module(name).__doc__ or ""
        except Exception:  # noqa: BLE001 (platform-specific modules)
            continue
        if len(doc.split()) >= 120:
            out.append((f"Explain the Python module {name}.", doc))
    return out


def main():
    tokenizer = detector_model.load_tokenizer()
    val = harm_data.load_split("val")
    y, pool = np.array([r["label"] for r in val]), dt.calibration_mask(val)
    prompts, responses = [r["prompt"] for r in val], [r["response"] for r in val]
    harmful = [r for r in val if r["label"] == 1]
    filler = [r["response"] for r in harm_data.load_split("train") if r["source"].startswith("benign_smollm2")]
    padded = behind([r["response"] for r in harmful], filler, 450, 22)
    docs = docstrings()
    print("| file | reading | threshold | validation TPR / FPR | harmful behind >= 450 words flagged | "
          f"stdlib docstrings flagged (of {len(docs)}) |")
    print("|---|---|---|---|---|---|")
    for path in (detector_onnx.served_model_path(REPO), detector_onnx.served_int8_path(REPO)):
        classifier = OnnxClassifier(path)
        for reading, scorer in (("first 512 tokens", first_window), ("whole answer, windows", score_pairs)):
            s = scorer(classifier, tokenizer, prompts, responses)
            thr = detector_calibrate.served_threshold(dt.threshold_for_fpr(s[pool], dt.TARGET_FPR))
            pad = scorer(classifier, tokenizer, [r["prompt"] for r in harmful], padded)
            doc = scorer(classifier, tokenizer, [p for p, _ in docs], [d for _, d in docs])
            print(f"| {path.name} | {reading} | {thr:.5f} | {(s[y == 1] >= thr).mean():.3f} / "
                  f"{(s[y == 0] >= thr).mean():.3f} | {int((pad >= thr).sum())} of {len(harmful)} | "
                  f"{int((doc >= thr).sum())} |")


if __name__ == "__main__":
    main()
