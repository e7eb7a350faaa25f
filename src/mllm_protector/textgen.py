"""Batched, greedy chat generation with a small causal LM (SmolLM2-Instruct on the CPU default).

Loaded once per Triton instance (weights, KV-cache buffers, tokenizer); a batch of conversations is generated in
`generate` calls of `rows_per_generate` rows (all of them by default) with left padding.
A folder with a `genai_config.json` (`export.detoxifier`: the onnxruntime-genai build of the model, 8-bit weights)
runs on onnxruntime-genai, whose C++ decoding loop has no per-token Python overhead; it generates one conversation at
a time. Any other folder runs on torch. Both tokenise with the folder's Hugging Face tokenizer, the one the model was
trained with.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

Messages = list[dict[str, str]]


class ChatGenerator:
    def __init__(
        self,
        model_dir: str | Path,
        max_input_tokens: int = 1024,
        threads: int | None = None,
        rows_per_generate: int | None = None,
    ) -> None:
        """`rows_per_generate`: conversations per `generate` call (None: the whole batch in one). On a CPU one row at a
        time is faster: a batched call pads every row to the longest prompt and decodes until the longest answer ends,
        and batching buys no arithmetic intensity on two cores (`benchmarks/results/detox_speed.md`)."""
        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        # Truncate from the left so that the end of the prompt (the question and generation cue) survives.
        self.tokenizer.truncation_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if (Path(model_dir) / "genai_config.json").exists():
            self.device = "cpu"
            self.model = GenaiDecoder(model_dir, threads)
        else:
            dtype = torch.float16 if self.device == "cuda" else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.max_input_tokens = max_input_tokens
        self.rows_per_generate = rows_per_generate
        # Control-token strings ("<|im_end|>", "<|im_start|>") in a message would become the real tokens once the
        # rendered template is tokenised: a client could close its turn and write the assistant's (`render`).
        specials = {tok.content for tok in self.tokenizer.added_tokens_decoder.values() if tok.special}
        self._control_strings = sorted((specials | set(self.tokenizer.all_special_tokens)) - {""}, key=len,
                                       reverse=True)
        # One generate at a time per instance: torch already uses every core for a single batch.
        self._lock = threading.Lock()

    def render(self, messages: Messages) -> str:
        """The prompt text of one conversation (chat template and generation cue); every control-token string inside
        a message is broken by a zero-width space, so only the template's own become control tokens."""
        def defuse(text: str) -> str:
            for control in self._control_strings:
                text = text.replace(control, control[0] + "\u200b" + control[1:])
            return text

        messages = [{**m, "content": defuse(m["content"])} for m in messages]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, conversations: Sequence[Messages], max_new_tokens: Sequence[int] | int) -> list[str]:
        """Greedy completions, one per conversation; each stops at its own `max_new_tokens` or end of turn."""
        limits = [max_new_tokens] * len(conversations) if isinstance(max_new_tokens, int) else list(max_new_tokens)
        step = self.rows_per_generate or len(conversations) or 1
        out: list[str] = []
        for start in range(0, len(conversations), step):
            out += self._generate(conversations[start : start + step], limits[start : start + step])
        return out

    def _generate(self, conversations: Sequence[Messages], limits: list[int]) -> list[str]:
        texts = [self.render(c) for c in conversations]
        if isinstance(self.model, GenaiDecoder):  # one row at a time: no padding
            ids = self.tokenizer(texts, truncation=True, max_length=self.max_input_tokens, add_special_tokens=False)
            with self._lock:
                rows = [self.model.greedy(row, limit) for row, limit in zip(ids["input_ids"], limits, strict=True)]
            return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in rows]
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


class GenaiDecoder:
    """Greedy decoding of token ids with onnxruntime-genai; the model's end-of-turn token ends a row early."""

    def __init__(self, model_dir: str | Path, threads: int | None = None) -> None:
        import onnxruntime_genai as og

        self._og = og
        config = og.Config(str(model_dir))
        # genai's own default leaves cores idle on a small box (measured: decode 48 vs 36 ms/token on 2 cores)
        session = {"intra_op_num_threads": threads or os.cpu_count() or 1}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": session}}}))
        self.model = og.Model(config)

    def greedy(self, input_ids: list[int], max_new_tokens: int) -> list[int]:
        """The new tokens (end-of-turn included when reached) after `input_ids`."""
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=len(input_ids) + max_new_tokens)
        generator = self._og.Generator(self.model, params)
        generator.append_tokens([input_ids])
        out: list[int] = []
        while not generator.is_done():
            generator.generate_next_token()
            out.append(int(generator.get_next_tokens()[0]))
        return out
