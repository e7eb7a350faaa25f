"""The answers-file reader of `benchmarks/eval_answers.py`: labels in the usual spellings, and a bad line named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.eval_answers import DataError, load_answers, parse_label


@pytest.mark.parametrize(("value", "label"), [(1, 1), (True, 1), ("harmful", 1), (" Unsafe ", 1), (0, 0),
                                              (False, 0), ("safe", 0), ("benign", 0), ("harmless", 0)])
def test_labels(value, label):
    assert parse_label(value) == label


def test_records_get_defaults(tmp_path: Path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"response": "r", "label": "safe"}) + "\n\n"
                    + json.dumps({"prompt": "p", "response": "s", "label": 1, "category": "cyber"}) + "\n")
    assert load_answers(path) == [
        {"prompt": "", "response": "r", "label": 0, "category": "", "group": ""},
        {"prompt": "p", "response": "s", "label": 1, "category": "cyber", "group": "p"},
    ]


@pytest.mark.parametrize(("line", "message"), [
    ('{"response": "r", "label": 0.5}', "label 0.5 is not one of"),
    ('{"response": "r"}', "label None"),
    ('{"response": "  ", "label": 1}', "'response' must be a non-empty string"),
    ('{"prompt": 3, "response": "r", "label": 1}', "'prompt' must be a string"),
    ('["r", 1]', "not a JSON object"),
    ('{"response": "r", "label": 1', "Expecting"),
])
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"response": "fine", "label": 0}) + "\n" + line + "\n")
    with pytest.raises(DataError, match=rf"a\.jsonl:2: .*{message}"):
        load_answers(path)


def test_an_empty_file_is_an_error(tmp_path: Path):
    (tmp_path / "a.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no answers"):
        load_answers(tmp_path / "a.jsonl")
