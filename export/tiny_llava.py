"""A tiny, randomly initialised LLaVA saved as a normal Hugging Face folder, for tests of the image-text-to-text path.

No vision-language weights can be had here (offline-assets.md), so the production code path
(`mllm.HFImageTextToText`: `AutoProcessor` + `AutoModelForImageTextToText`, chat template with an image entry,
batched generation) is exercised on this model instead: ~6.4M parameters, random weights, nonsense answers. The
tokenizer is SmolLM2's (ChatML) plus an `<image>` token; the vision tower is a 2-layer CLIP on 32x32 images
(4x4 patches of 8 px = 16 image tokens); the language model a 2-layer Llama.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mllm_protector.export import smollm2

DEFAULT_TOKENIZER_DIR = Path(__file__).resolve().parents[1] / "artifacts" / "smollm2-135m-instruct"
IMAGE_TOKEN = "<image>"
IMAGE_SIZE = 32
PATCH_SIZE = 8

# ChatML, as SmolLM2 writes it, with list contents: an image entry becomes the `<image>` placeholder, which the
# processor expands to one token per image patch.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build(out_dir: Path, tokenizer_dir: Path | None = None, seed: int = 0) -> Path:
    """Write the tiny LLaVA (model, processor, tokenizer, chat template) to `out_dir` unless it is already there.

    `tokenizer_dir` is a saved SmolLM2 folder; by default the project's `artifacts/smollm2-135m-instruct`, built
    if missing.
    """
    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists() and (out_dir / "preprocessor_config.json").exists():
        return out_dir
    import torch
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    if tokenizer_dir is None:
        tokenizer_dir = smollm2.build(DEFAULT_TOKENIZER_DIR)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.padding_side = "left"
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=True,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",  # drops the CLS token: 16 image tokens
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )

    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=None, eos_token_id=eos_id, pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--tokenizer-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    print(build(args.out_dir, args.tokenizer_dir))


if __name__ == "__main__":
    main()
