"""A model split over several wheels is joined in order and checked (`package_data.join_members`: Gemma, Qwen)."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from mllm_protector.export.package_data import join_members


@pytest.fixture
def cache(tmp_path):
    """Two part wheels named as pip names them, as `wheel()` finds them in its cache."""
    for i, data in enumerate((b"GGUF-first-half ", b"second half"), 1):
        with zipfile.ZipFile(tmp_path / f"model_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"model_part{i}/data/part{i:02d}.bin", data)
    return tmp_path


PARTS = [(f"model-part{i}==1.0", f"model_part{i}/data/part{i:02d}.bin") for i in (1, 2)]


def test_parts_are_joined_in_order(cache, tmp_path):
    whole = b"GGUF-first-half second half"
    dest = join_members(PARTS, tmp_path / "out" / "model.gguf", hashlib.sha256(whole).hexdigest(), cache)
    assert dest.read_bytes() == whole


def test_a_wrong_digest_leaves_nothing(cache, tmp_path):
    dest = tmp_path / "out" / "model.gguf"
    with pytest.raises(ValueError, match="sha256"):
        join_members(list(reversed(PARTS)), dest, hashlib.sha256(b"GGUF-first-half second half").hexdigest(), cache)
    assert not dest.exists() and not dest.with_suffix(".partial").exists()
