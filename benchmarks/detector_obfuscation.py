"""How cheap text obfuscations of a harmful answer move the served detector: of the harmful probe and validation
answers the CPU config's file flags, how many stay flagged when the answer is rewritten with other alphabets, invisible
characters or leetspeak, with and without `detector_text.normalize`.

    python benchmarks/detector_obfuscation.py        (about 1 min on 2 cores; validation and probes only)

Prints a markdown table. The "normalize off" column is what the detector read before session 21.
"""

from __future__ import annotations

import json
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mllm_protector import detector_text, harm_data  # noqa: E402
from mllm_protector.export import detector_calibrate, detector_onnx  # noqa: E402
from mllm_protector.export import detector_model as dm  # noqa: E402
from mllm_protector.onnx_classifier import OnnxClassifier, score_pairs  # noqa: E402


def styled(text: str, upper: int, lower: int) -> str:
    """ASCII letters moved to another Unicode alphabet (fullwidth, mathematical bold, ...)."""
    return "".join(chr(upper + ord(c) - 65) if "A" <= c <= "Z" else chr(lower + ord(c) - 97) if "a" <= c <= "z"
                   else c for c in text)


def between_letters(text: str, mark: str) -> str:
    return "".join(c + mark if c.isalpha() else c for c in text)


OBFUSCATIONS = {
    "none": lambda t: t,
    "fullwidth letters": lambda t: styled(t, 0xFF21, 0xFF41),
    "mathematical bold letters": lambda t: styled(t, 0x1D400, 0x1D41A),
    "Cyrillic look-alikes (a e o p c x i)": lambda t: t.translate(str.maketrans("aeopcxi", "аеорсхі")),
    "Greek look-alikes (a e o p c x i)": lambda t: t.translate(str.maketrans("aeopcxi", "αεορϲχι")),
    "zero-width space after every letter": lambda t: between_letters(t, "\u200b"),
    "soft hyphen after every letter": lambda t: between_letters(t, "\u00ad"),
    "leetspeak (a4 e3 o0 i1 s5)": lambda t: t.translate(str.maketrans("aeois", "43015")),
}


def main() -> None:
    tokenizer = dm.load_tokenizer()
    path = detector_onnx.cpu_served_path(detector_onnx.DEFAULT_MODEL_REPOSITORY)
    classifier = OnnxClassifier(path)
    threshold = detector_calibrate.threshold_for_file(path.name, dm.load_calibration())
    records = [json.loads(line) for f in (harm_data.PROBES, harm_data.PROBES_HELDOUT)
               for line in f.read_text(encoding="utf-8").splitlines()]
    records = [r for r in records + harm_data.load_split("val") if r["label"] == 1]
    prompts = [r["prompt"] for r in records]
    flagged = score_pairs(classifier, tokenizer, prompts, [r["response"] for r in records]) >= threshold
    prompts = [p for p, f in zip(prompts, flagged, strict=True) if f]
    answers = [r["response"] for r, f in zip(records, flagged, strict=True) if f]
    normalize = detector_text.normalize

    def stays_flagged(obfuscate, normalized: bool) -> str:
        detector_text.normalize = normalize if normalized else (lambda text: text)
        try:
            s = score_pairs(classifier, tokenizer, prompts, [obfuscate(a) for a in answers])
        finally:
            detector_text.normalize = normalize
        return f"{int((s >= threshold).sum())} (median {np.median(s):.3f})"

    print(f"{len(answers)} harmful answers flagged by `{path.name}` at {threshold} (probes and validation)\n")
    print("| answer written with | stay flagged, normalize off | stay flagged, served (normalize on) |")
    print("|---|---|---|")
    for name, obfuscate in OBFUSCATIONS.items():
        print(f"| {name} | {stays_flagged(obfuscate, False)} | {stays_flagged(obfuscate, True)} |")


if __name__ == "__main__":
    main()
