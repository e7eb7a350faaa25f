"""The Gemma tokenizer is rebuilt from a GGUF vocabulary as byte-fallback BPE (`export/gemma.py`).

transformers' GGUF converter reads the same vocabulary as a Unigram model; on Gemma-3's real vocabulary that split
"world" into "w" "or" "ld" (session 16). This builds a small GGUF with the same fields and checks that merges follow the
pieces' scores, that a byte outside the vocabulary falls back to byte tokens, and that decoding restores the text.
"""

from __future__ import annotations

import gguf
import pytest

# id: piece, score (higher merges first, as SentencePiece BPE scores), GGUF token type. As in the real vocabulary,
# long pieces are late merges with low scores, so a Unigram reading prefers short pieces ("▁w" "orld", "▁h" "i").
VOCAB = [("<pad>", 0.0, 3), ("<eos>", 0.0, 3), ("<bos>", 0.0, 3), ("<unk>", 0.0, 2),
         *[(f"<0x{b:02X}>", 0.0, 6) for b in range(256)],
         ("▁", -1.0, 1), ("w", -2.0, 1), ("o", -3.0, 1), ("r", -4.0, 1), ("l", -5.0, 1), ("d", -6.0, 1),
         ("h", -7.0, 1), ("i", -8.0, 1), ("or", -10.0, 1), ("ld", -11.0, 1), ("▁w", -12.0, 1), ("▁h", -13.0, 1),
         ("orld", -14.0, 1), ("▁wor", -40.0, 1), ("▁hi", -50.0, 1), ("▁world", -100.0, 1)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from mllm_protector.export import gemma

    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_tokenizer_model("llama")
    writer.add_token_list([p for p, _, _ in VOCAB])
    writer.add_token_scores([s for _, s, _ in VOCAB])
    writer.add_token_types([t for _, _, t in VOCAB])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return gemma.bpe_tokenizer(path)


def test_words_merge_by_score(tokenizer):
    ids = tokenizer(" world hi")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<bos>", "▁world", "▁hi"]


def test_unknown_characters_fall_back_to_bytes_and_decode_back(tokenizer):
    text = " world é"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids)[-3:] == ["▁", "<0xC3>", "<0xA9>"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
