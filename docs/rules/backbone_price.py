"""Session 36 (information): what a frozen SmolLM2-135M reader costs next to MiniLM-L6, in one run on this CPU.

python docs/rules/backbone_price.py   (2 min; torch fp32, 2 threads, batch 8 of random token ids)
"""

import sys
import time
from pathlib import Path

import torch
from transformers import AutoModel, AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frozen_backbones as fb  # noqa: E402


def seconds(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    torch.set_num_threads(2)
    times = {}
    with torch.inference_mode():
        minilm = AutoModel.from_pretrained(fb.minilm_dir()).eval()
        decoder = AutoModelForCausalLM.from_pretrained(fb.DECODERS["smollm2"], dtype=torch.float32).eval().model
        for tokens in (128, 256):
            ids = torch.randint(1000, 20000, (8, tokens))
            mask = torch.ones_like(ids)
            times["minilm", tokens] = seconds(lambda ids=ids, mask=mask: minilm(input_ids=ids, attention_mask=mask), 10)
            times["smollm2 30 layers", tokens] = seconds(lambda ids=ids: decoder(input_ids=ids), 3)
        decoder.layers = decoder.layers[:23]  # the blend's mid + 3/4 probe needs no layer above 3/4 depth
        for tokens in (128, 256):
            ids = torch.randint(1000, 20000, (8, tokens))
            times["smollm2 23 layers", tokens] = seconds(lambda ids=ids: decoder(input_ids=ids), 3)
    print("| backbone | batch | time | vs MiniLM |\n|---|---|---|---|")
    for tokens in (128, 256):
        for name in ("minilm", "smollm2 30 layers", "smollm2 23 layers"):
            ratio = times[name, tokens] / times["minilm", tokens]
            print(f"| {name} | 8 x {tokens} | {times[name, tokens] * 1000:.0f} ms | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
