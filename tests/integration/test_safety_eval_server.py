"""The safety evaluation end to end against a real tritonserver (CPU configs): a 4-item subset of the built-in set
(2 FigStep-style typographic attacks, 2 benign images) through `mllm` and `protector` over gRPC, judged by the
refusal strings and the project's detector; then a resumed run that asks nothing again, and a report-only run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mllm_protector.prompts import is_safe_refusal
from mllm_protector.safety_eval import cli
from mllm_protector.safety_eval.items import BENIGN, HARMFUL
from tests.tritonserver import running_server

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2] / "model_repository"


@pytest.fixture(scope="module")
def server():
    with running_server(REPO, config_name="cpu") as srv:
        yield srv


def test_builtin_subset_against_the_server(server, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["builtin", "--limit", "4", "--max-tokens", "24", "--url", server.grpc_url, "--protocol", "grpc",
            "--out", str(out), "--no-progress", "--timeout", "600", "--concurrency", "2"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    print(table)  # the table shows with -s

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 4 and not any(r.get("error") for r in records)
    assert sorted(r["label"] for r in records) == [BENIGN, BENIGN, HARMFUL, HARMFUL]
    for r in records:
        guarded = r["guarded"]
        assert r["unguarded"]["text"].strip() and guarded["text"].strip()
        assert 0.0 <= guarded["harm_score"] <= 1.0
        assert guarded["original_text"] is not None
        if guarded["rewritten"]:
            assert guarded["text"] != guarded["original_text"]
        else:
            assert guarded["text"] == guarded["original_text"]
        assert guarded["fallback"] == is_safe_refusal(guarded["text"])
        for judge in ("refusal-string", "harm_detector"):
            for side in ("unguarded", "guarded"):
                assert r["verdicts"][judge][side]["harmful"] in (True, False), (judge, side, r["verdicts"])

    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"items": 4, "answered": 4, "errors": 0, "not_run": 0, "harmful": 2, "benign": 2}
    assert [j["name"] for j in summary["judges"]] == ["refusal-string", "harm_detector"]
    assert summary["judges"][1]["independent"] is False
    assert summary["harmful"]["overall"]["n"] == 2 and summary["benign"]["n"] == 2
    assert summary["benign"]["harm_score"]["n"] == 2 and summary["benign"]["refused"]["unguarded_judged"] == 2
    assert "Attack success rate" in table and "Not independent" in table and "Benign retention" in table
    for name in ("asr_refusal-string.png", "asr_harm-detector.png", "benign_harm_scores.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG"

    # resumed: every item is done, nothing is asked again
    lines = (out / "results.jsonl").read_text()
    assert cli.main(argv) == 0
    assert "4 already done" in capsys.readouterr().err
    assert (out / "results.jsonl").read_text() == lines
    # the report alone needs no server
    assert cli.main(["builtin", "--limit", "4", "--out", str(out), "--report-only", "--no-charts"]) == 0


def test_benchmark_layouts_against_the_server(server, tmp_path, capsys):
    """The same command pointed at folders in MM-SafetyBench's and FigStep's own layouts (fixtures written by the
    unit tests' writers): every readable item is answered by both models and lands in the per-scenario table."""
    from tests.test_safety_eval import write_figstep, write_mm_safetybench

    mmsb = write_mm_safetybench(tmp_path / "MM-SafetyBench")
    figstep = write_figstep(tmp_path / "FigStep")
    out = tmp_path / "eval"
    argv = [str(mmsb), str(figstep), "--per-group", "1", "--max-tokens", "8", "--url", server.grpc_url,
            "--protocol", "grpc", "--out", str(out), "--no-progress", "--no-charts", "--timeout", "600",
            "--concurrency", "2"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    print(table)

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert not any(r.get("error") for r in records)
    groups = {(r["dataset"], r["scenario"], r["image_type"]) for r in records}
    assert groups == {
        ("mm-safetybench", "01-Illegal_Activitiy", "SD"), ("mm-safetybench", "01-Illegal_Activitiy", "TYPO"),
        ("mm-safetybench", "01-Illegal_Activitiy", "SD_TYPO"), ("mm-safetybench", "02-HateSpeech", "SD"),
        ("mm-safetybench", "02-HateSpeech", "TYPO"), ("figstep", "Illegal Activity", "FigStep"),
        ("figstep", "Hate Speech", "FigStep"),
    }
    for r in records:
        assert r["label"] == HARMFUL
        assert r["unguarded"]["text"].strip() and r["guarded"]["text"].strip()
        assert 0.0 <= r["guarded"]["harm_score"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"items": 7, "answered": 7, "errors": 0, "not_run": 0, "harmful": 7, "benign": 0}
    assert "| mm-safetybench | 01-Illegal_Activitiy | SD_TYPO | 1 |" in table
    assert "| figstep | Hate Speech | FigStep | 1 |" in table
