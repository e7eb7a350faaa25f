"""export/tensorrt_engine.py on a machine without TensorRT: a clear message and exit status 2, nothing written."""

from __future__ import annotations

import sys

import pytest

from mllm_protector.export import tensorrt_engine


def test_without_tensorrt_exits_with_a_clear_message(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError, even where it is installed
    plan = tmp_path / "model.plan"
    assert tensorrt_engine.main(["--onnx", str(tmp_path / "model.onnx"), "--output", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "TensorRT is not installed" in err and "GPU" in err
    assert not plan.exists()


def test_profile_arguments():
    assert tensorrt_engine._triple("1,16,64") == (1, 16, 64)
    with pytest.raises(Exception, match="min <= opt <= max"):
        tensorrt_engine._triple("64,16,1")
