"""Batched, greedy chat generation with a small causal LM (SmolLM2-Instruct on the CPU default).

Loaded once per Triton instance; a whole batch of conversations is generated in one `generate` call with left padding.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

Messages = list[dict[str, str]]


class ChatGenerator:
    def __init__(self, model_dir: str | Path, max_input_tokens: int = 1024, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.max_input_tokens = max_input_tokens
        # One generate at a time per instance: torch already uses every core for a single batch.
        self._lock = threading.Lock()

    def generate(self, conversations: Sequence[Messages], max_new_tokens: Sequence[int] | int) -> list[str]:
        """Greedy completions, one per conversation; each stops at its own `max_new_tokens` or end of turn."""
        if not conversations:
            return []
        limits = [max_new_tokens] * len(conversations) if isinstance(max_new_tokens, int) else list(max_new_tokens)
        texts = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations
        ]
        # Truncate from the left so that the end of the prompt (the question and generation cue) survives.
        self.tokenizer.truncation_side = "left"
        batch = self.tokenizer(
            texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_input_tokens,
            add_special_tokens=False,
        )
        batch = batch.to(self.device)
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                **batch,
                max_new_tokens=max(limits),
                do_sample=False,
                num_beams=1,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        return [
            self.tokenizer.decode(row[:limit], skip_special_tokens=True).strip()
            for row, limit in zip(new_tokens, limits, strict=True)
        ]
