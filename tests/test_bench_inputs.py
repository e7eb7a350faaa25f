"""Unit tests of the load-test tooling in benchmarks/perf: perf_analyzer input data, its CSV, the command line, the
repository variants (config edits, the serialised-BLS patch), the metrics delta and the report. No server, no
perf_analyzer run, no timing."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from pathlib import Path

import pytest
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2

from benchmarks.perf import analyzer, inputs, metrics, report, variants
from benchmarks.perf.run_suite import Results, _pair_row
from benchmarks.perf.suites import SUITES

REPO = Path(__file__).resolve().parents[1] / "model_repository"

# A real perf_analyzer 2.51 `-f` CSV (concurrency mode), latencies in microseconds.
PA_CSV = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency
4,6.89339,13,163834,3,191,394708,3068,4,579993,646569,680249,680579

"""


# ---- input data --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(inputs.KINDS))
def test_every_kind_writes_a_valid_perf_analyzer_document(kind, tmp_path):
    path = inputs.write_input_data(kind, tmp_path / f"{kind}.json", max_tokens=7)
    doc = json.loads(path.read_text())
    entries = doc["data"]
    assert entries
    names = set(entries[0])
    assert "text_input" in names
    for e in entries:
        assert set(e) == names
        for value in e.values():
            assert isinstance(value, list) and len(value) == 1
    if "max_tokens" in names:
        assert {e["max_tokens"][0] for e in entries} == {7}


@pytest.mark.parametrize("kind", ["benign_image", "typographic"])
def test_images_are_base64_of_decodable_pictures(kind):
    for e in inputs.KINDS[kind](16):
        raw = base64.b64decode(e["image"][0], validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            assert im.format in {"PNG", "JPEG"}
            assert im.size[0] > 0


def test_guard_kinds_send_a_response_and_no_generation_inputs():
    for kind in ("guard_benign", "guard_harmful", "detector", "detox"):
        for e in inputs.KINDS[kind](16):
            assert set(e) == {"text_input", "response"}
            assert e["response"][0].strip()


def test_detector_mix_interleaves_harmful_answers_among_benign_ones():
    entries = inputs.detector(limit=32)
    harmful = {r for _, r in inputs.harmful_pairs()}
    flags = [e["response"][0] in harmful for e in entries]
    assert any(flags) and not all(flags)
    first_harmful = flags.index(True)
    assert first_harmful < len(flags) - 1  # not all bunched at the end
    assert not flags[0]


def test_harmful_pairs_fall_back_to_the_built_in_set(monkeypatch):
    import mllm_protector.harm_data as harm_data

    def broken(*_a, **_k):
        raise OSError("no packaged data")

    monkeypatch.setattr(harm_data, "load_split", broken)
    inputs.harmful_pairs.cache_clear()
    try:
        assert inputs.harmful_pairs() == inputs.HARMFUL_PAIRS
    finally:
        inputs.harmful_pairs.cache_clear()


def test_benign_pairs_fall_back_without_the_data_file(tmp_path):
    pairs = inputs.benign_pairs(tmp_path / "missing.jsonl")
    assert pairs and all(p and r for p, r in pairs)


def test_benign_pairs_reads_the_file_up_to_the_limit(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"q{i}", "response": f"a{i}"}) for i in range(5)) + "\n\n")
    assert inputs.benign_pairs(path, limit=3) == [("q0", "a0"), ("q1", "a1"), ("q2", "a2")]


def test_input_data_rejects_inconsistent_entries():
    with pytest.raises(ValueError, match="entry 1"):
        inputs.input_data([inputs.entry(text_input="a", response="b"), inputs.entry(text_input="a")])
    with pytest.raises(ValueError, match="one-element"):
        inputs.input_data([{"text_input": ["a", "b"]}])
    with pytest.raises(ValueError):
        inputs.input_data([])
    with pytest.raises(ValueError, match="unknown input kind"):
        inputs.write_input_data("nope", Path("/nonexistent/x.json"))


def test_entry_drops_absent_optional_inputs():
    assert inputs.entry(text_input="hi", image=None, max_tokens=4) == {"text_input": ["hi"], "max_tokens": [4]}


def test_every_suite_names_a_known_input_kind_and_protocol():
    for s in SUITES.values():
        assert s.inputs in inputs.KINDS
        assert set(s.protocols) <= {"grpc", "http"}
        assert s.concurrency and max(s.concurrency) <= 16


def test_slow_suites_scale_their_request_count_with_concurrency():
    s = SUITES["mllm"]
    assert s.window_for(8).requests >= 8
    assert s.window_for(8).requests >= s.window_for(1).requests
    quick = SUITES["harm_detector"].scaled(0.5)
    assert quick.window.interval_ms == SUITES["harm_detector"].window.interval_ms // 2


# ---- perf_analyzer: CSV, command line, libraries -----------------------------------------------------------------


def test_parse_csv_converts_microseconds_to_milliseconds():
    (m,) = analyzer.parse_csv(PA_CSV)
    assert m.concurrency == 4
    assert m.throughput == pytest.approx(6.89339)
    assert m.p50_ms == pytest.approx(579.993)
    assert m.p99_ms == pytest.approx(680.579)
    assert m.server_queue_ms == pytest.approx(0.003)
    assert m.server_compute_ms == pytest.approx((191 + 394708 + 3068) / 1000)
    assert m.client_overhead_ms == pytest.approx(0.017)
    # no "Avg latency" column in 2.51's CSV (without --verbose-csv): the sum of the latency breakdown
    assert m.avg_ms == pytest.approx((13 + 163834 + 4 + 3 + 191 + 394708 + 3068) / 1000)
    assert m.avg_ms <= m.p99_ms


def test_parse_csv_reads_several_rows_and_an_avg_column():
    text = ("Concurrency,Inferences/Second,p50 latency,p99 latency,Avg latency\n"
            "1,10,1000,2000,1500\n2,15,2000,3000,2500\n")
    rows = analyzer.parse_csv(text)
    assert [r.concurrency for r in rows] == [1, 2]
    assert rows[1].avg_ms == pytest.approx(2.5)
    assert rows[0].server_queue_ms == 0.0


def test_parse_csv_rejects_other_files_and_accepts_empty():
    assert analyzer.parse_csv("\n\n") == []
    with pytest.raises(ValueError, match="not a perf_analyzer"):
        analyzer.parse_csv("a,b\n1,2\n")


def test_command_line_for_one_point(tmp_path):
    argv = analyzer.command(Path("/x/perf_analyzer"), "protector", "127.0.0.1:8001", "grpc", tmp_path / "in.json", 8,
                            tmp_path / "out.csv", analyzer.Window(mode="requests", requests=12))
    assert argv[:7] == ["/x/perf_analyzer", "-m", "protector", "-u", "127.0.0.1:8001", "-i", "grpc"]
    assert "--concurrency-range=8:8" in argv
    assert f"--input-data={tmp_path / 'in.json'}" in argv
    assert "--request-count=12" in argv
    assert argv[argv.index("-f") + 1] == str(tmp_path / "out.csv")
    with pytest.raises(ValueError):
        analyzer.command(Path("pa"), "m", "u", "udp", tmp_path, 1, tmp_path, analyzer.Window())


def test_time_window_arguments():
    args = analyzer.Window(mode="time", interval_ms=1500, stability=20, max_trials=4).args()
    assert "--measurement-mode=time_windows" in args
    assert "--measurement-interval=1500" in args
    assert "--stability-percentage=20" in args and "--max-trials=4" in args
    with pytest.raises(ValueError):
        analyzer.Window(mode="forever")


def test_library_dir_links_the_sonames_perf_analyzer_needs(tmp_path):
    src = tmp_path / "libs"
    src.mkdir()
    (src / "libb64-98cb6333.so.0d").write_bytes(b"b64")
    (src / "libcudart-09529672.so.12.6.77").write_bytes(b"cudart")
    out = analyzer.library_dir(tmp_path / "pa-libs", src)
    assert (out / "libb64.so.0d").read_bytes() == b"b64"
    assert (out / "libcudart.so.12").read_bytes() == b"cudart"
    assert analyzer.library_dir(tmp_path / "pa-libs", src) == out  # idempotent
    with pytest.raises(FileNotFoundError):
        analyzer.library_dir(tmp_path / "other", tmp_path / "empty")


# ---- repository variants -----------------------------------------------------------------------------------------


def _parse_config(text: str):
    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.mark.parametrize("model", ["harm_tokenizer", "harm_classifier", "protector", "mllm", "detoxifier"])
def test_removing_dynamic_batching_keeps_a_valid_batching_config(model):
    text = (REPO / model / "configs" / "cpu.pbtxt").read_text()
    before = _parse_config(text)
    after = _parse_config(variants.remove_dynamic_batching(text))
    assert before.HasField("dynamic_batching")
    assert not after.HasField("dynamic_batching")
    assert after.max_batch_size == before.max_batch_size
    assert after.input == before.input and after.output == before.output


def test_config_edits_change_only_their_setting():
    text = (REPO / "protector" / "configs" / "cpu.pbtxt").read_text()
    edited = text
    for edit in variants.parse_edits("protector.instances=3,protector.queue_delay_us=500,"
                                     "protector.preferred_batch_sizes=4 8,protector.param.harm_threshold=0.7,"
                                     "protector.param.brand_new=x,protector.max_batch_size=16"):
        edited = variants.apply_config_edit(edited, edit)
    before, after = _parse_config(text), _parse_config(edited)
    assert after.instance_group[0].count == 3
    assert after.dynamic_batching.max_queue_delay_microseconds == 500
    assert list(after.dynamic_batching.preferred_batch_size) == [4, 8]
    assert after.parameters["harm_threshold"].string_value == "0.7"
    assert after.parameters["brand_new"].string_value == "x"
    assert after.max_batch_size == 16
    assert after.parameters["mllm_model"] == before.parameters["mllm_model"]
    assert after.input == before.input


def test_parameter_edit_on_the_classifier_layout():
    text = (REPO / "harm_classifier" / "configs" / "cpu.pbtxt").read_text()
    after = _parse_config(variants.set_parameter(text, "intra_op_thread_count", "1"))
    assert after.parameters["intra_op_thread_count"].string_value == "1"
    assert after.parameters["model_filename"].string_value == "model.int8.onnx"


def test_bad_edits_are_refused():
    with pytest.raises(variants.VariantError):
        variants.parse_edits("no_setting=1")
    with pytest.raises(variants.VariantError):
        variants.parse_edits("model.setting")
    with pytest.raises(variants.VariantError):
        variants.apply_config_edit("max_batch_size: 8\n", variants.Edit("m", "warp_speed", "9"))
    with pytest.raises(variants.VariantError):
        variants.remove_dynamic_batching("max_batch_size: 8\n")
    with pytest.raises(variants.VariantError):
        variants.apply_config_edit("max_batch_size: 8\n", variants.Edit("m", "dynamic_batching", "on"))


def _fake_repository(root: Path) -> Path:
    repo = root / "src_repo"
    for model in ("harm_classifier", "protector"):
        (repo / model / "1").mkdir(parents=True)
        (repo / model / "configs").mkdir()
        (repo / model / "configs" / "cpu.pbtxt").write_text(
            (REPO / model / "configs" / "cpu.pbtxt").read_text())
    (repo / "harm_classifier" / "1" / "model.onnx").write_bytes(b"onnx")
    (repo / "harm_classifier" / "1" / "model.py").write_text("# classifier\n")
    (repo / "protector" / "1" / "bls_calls.py").write_text(
        "class BlsCalls:\n    async def generate(self, request):\n        return request\n")
    (repo / "protector" / "1" / "__pycache__").mkdir()
    (repo / "protector" / "1" / "__pycache__" / "x.pyc").write_bytes(b"")
    arts = root / "artifacts" / "detector"
    arts.mkdir(parents=True)
    (arts / "model.int8.onnx").write_bytes(b"int8")
    return repo


def test_make_variant_copies_configs_links_weights_and_applies_edits(tmp_path):
    src = _fake_repository(tmp_path)
    spec = ("harm_classifier.dynamic_batching=off,harm_classifier.instances=2,"
            "harm_classifier.param.model_filename=model.int8.onnx,protector.bls=serial")
    repo = variants.make_variant(tmp_path / "out", spec, source=src, artifacts=tmp_path / "artifacts")
    clf = repo / "harm_classifier"
    assert (clf / "1" / "model.onnx").is_symlink()
    assert (clf / "1" / "model.int8.onnx").read_bytes() == b"int8"
    assert not (clf / "1" / "model.py").is_symlink()
    config = _parse_config((clf / "configs" / "cpu.pbtxt").read_text())
    assert not config.HasField("dynamic_batching")
    assert config.instance_group[0].count == 2
    assert config.parameters["model_filename"].string_value == "model.int8.onnx"
    assert "_bench_serial_generate" in (repo / "protector" / "1" / "bls_calls.py").read_text()
    assert not (repo / "protector" / "1" / "__pycache__").exists()
    assert (tmp_path / "out" / "artifacts").is_symlink()
    # the source is untouched
    assert "dynamic_batching" in (src / "harm_classifier" / "configs" / "cpu.pbtxt").read_text()
    with pytest.raises(variants.VariantError, match="no model"):
        variants.make_variant(tmp_path / "out2", "nope.instances=2", source=src, artifacts=tmp_path / "artifacts")


def test_serialised_bls_runs_one_generate_at_a_time():
    source = (
        "import asyncio\n"
        "class BlsCalls:\n"
        "    active = 0\n"
        "    peak = 0\n"
        "    async def generate(self, request):\n"
        "        BlsCalls.active += 1\n"
        "        BlsCalls.peak = max(BlsCalls.peak, BlsCalls.active)\n"
        "        await asyncio.sleep(0)\n"
        "        await asyncio.sleep(0)\n"
        "        BlsCalls.active -= 1\n"
        "        return request\n"
    )

    async def run(src: str) -> tuple[list, int]:
        ns: dict = {}
        exec(compile(src, "bls_calls.py", "exec"), ns)
        calls = ns["BlsCalls"]()
        out = await asyncio.gather(*(calls.generate(i) for i in range(5)))
        return out, ns["BlsCalls"].peak

    concurrent_out, concurrent_peak = asyncio.run(run(source))
    serial_out, serial_peak = asyncio.run(run(variants.serialise_bls(source)))
    assert concurrent_peak == 5
    assert serial_peak == 1
    assert serial_out == concurrent_out == [0, 1, 2, 3, 4]
    with pytest.raises(variants.VariantError):
        variants.serialise_bls("def other(): pass\n")


# ---- server metrics ----------------------------------------------------------------------------------------------

METRICS_BEFORE = """# HELP nv_inference_count Number of inferences performed
nv_inference_count{model="protector",version="1"} 10
nv_inference_exec_count{model="protector",version="1"} 5
nv_inference_request_success{model="protector",version="1"} 10
nv_inference_request_duration_us{model="protector",version="1"} 100000
mllm_protector_requests_total{model="protector"} 10
mllm_protector_outcomes_total{model="protector",outcome="passed"} 10
mllm_protector_stage_latency_seconds_sum{model="protector",stage="score"} 1.0
mllm_protector_stage_latency_seconds_count{model="protector",stage="score"} 5
"""
METRICS_AFTER = """nv_inference_count{model="protector",version="1"} 30
nv_inference_exec_count{model="protector",version="1"} 9
nv_inference_request_success{model="protector",version="1"} 30
nv_inference_request_duration_us{model="protector",version="1"} 500000
nv_inference_request_failure{model="protector",reason="BACKEND",version="1"} 0
mllm_protector_requests_total{model="protector"} 30
mllm_protector_outcomes_total{model="protector",outcome="passed"} 22
mllm_protector_outcomes_total{model="protector",outcome="rewritten"} 4
mllm_protector_outcomes_total{model="protector",outcome="rewritten_on_retry"} 3
mllm_protector_outcomes_total{model="protector",outcome="refused"} 1
mllm_protector_stage_latency_seconds_sum{model="protector",stage="score"} 1.8
mllm_protector_stage_latency_seconds_count{model="protector",stage="score"} 9
odd_line without a number
"""


def test_metrics_delta_summary():
    d = metrics.delta(metrics.parse(METRICS_BEFORE), metrics.parse(METRICS_AFTER))
    s = metrics.summary(d)
    assert s["protector_inferences"] == 20
    assert s["protector_avg_batch"] == pytest.approx(5.0)
    assert s["protector_request_ms"] == pytest.approx(20.0)
    assert s["guarded"] == 20
    assert s["flagged_fraction"] == pytest.approx((4 + 3 + 1) / 20)  # rewritten on the retry is flagged too
    assert s["stage_score_ms"] == pytest.approx(200.0)
    assert "protector_failed" not in s
    assert metrics.scrape("http://127.0.0.1:9/metrics", timeout=0.5) == {}


# ---- results and report ------------------------------------------------------------------------------------------


def _m(suite: str, protocol: str, c: int, rps: float, p50: float, p99: float, **extra) -> analyzer.Measurement:
    m = analyzer.Measurement(concurrency=c, throughput=rps, p50_ms=p50, p90_ms=p99, p95_ms=p99, p99_ms=p99,
                             avg_ms=p50, suite=suite, model="x", protocol=protocol)
    m.extra = {"load1": 1.0, **extra}
    return m


def test_results_replace_a_point_measured_again(tmp_path):
    res = Results(tmp_path)
    csv_row = PA_CSV.replace("\n4,", "\n1,")
    res.add_point(_m("harm_detector", "grpc", 1, 10, 5, 9), csv_row)
    res.add_point(_m("harm_detector", "grpc", 4, 20, 6, 9), PA_CSV)
    res.add_point(_m("harm_detector", "grpc", 1, 12, 5, 9), csv_row)
    data = json.loads((tmp_path / "results.json").read_text())
    assert sorted((p["concurrency"], p["throughput"]) for p in data["points"]) == [(1, 12), (4, 20)]
    rows = analyzer.parse_csv((tmp_path / "harm_detector_grpc.csv").read_text())
    assert [r.concurrency for r in rows] == [1, 4]


def test_pair_row_overhead_and_ratio():
    a = [_m("mllm", "grpc", 1, 1.0, 1000, 1200), _m("mllm", "grpc", 1, 1.0, 1100, 1300)]
    b = [_m("benign_image", "grpc", 1, 0.95, 1030, 1250), _m("benign_image", "grpc", 1, 0.9, 1150, 1400)]
    row = _pair_row(1, a, b, "mllm", "protector")
    assert row["mllm"]["p50_ms"] == pytest.approx(1050)
    assert row["protector"]["p50_ms"] == pytest.approx(1090)
    assert row["p50_change_pct"] == pytest.approx(100 * 40 / 1050, abs=0.01)
    assert row["throughput_ratio"] == pytest.approx(0.925, abs=0.001)
    assert row["p50_change_pct_paired"] == pytest.approx((3.0 + 100 * 50 / 1100) / 2, abs=0.01)


def test_headline_verdicts_and_report_files(tmp_path):
    over_rows = [
        _pair_row(1, [_m("mllm", "grpc", 1, 1, 1000, 1100)], [_m("benign_image", "grpc", 1, 1, 1030, 1150)],
                  "mllm", "protector"),
        _pair_row(8, [_m("mllm", "grpc", 8, 2, 3000, 3500)], [_m("benign_image", "grpc", 8, 2, 3400, 3900)],
                  "mllm", "protector"),
    ]
    bat = _pair_row(16, [_m("harm_detector", "grpc", 16, 30, 500, 600)],
                    [_m("harm_detector", "grpc", 16, 10, 1500, 1600)], "batching_on", "batching_off")
    data = {
        "points": [_m("guard_benign", "grpc", 16, 250.0, 60, 90, flagged_fraction=0.0).row(),
                   _m("guard_benign", "grpc", 1, 40.0, 25, 30).row()],
        "comparisons": {"overhead": {"rounds": 1, "max_tokens": 16, "rows": over_rows},
                        "batching": {"rounds": 1, "rows": [bat]},
                        "ab:guard_benign:x.instances=2": {"suite": "guard_benign", "rows": [bat]}},
        "soak": {"concurrency": 16, "duration_s": 300, "requests": 1000, "failed": 0, "rss_growth_mib": 3.0},
    }
    rows = {r[0]: r for r in report.headline_rows(data)}
    assert rows["guard overhead, benign images, c=1 (p50 / p99)"][3] == "met"  # 3 % <= 5 %
    assert rows["guard overhead, benign images, c=8 (p50 / p99)"][3] == "**not met**"  # 13 % > 10 %
    assert rows["guard-only throughput, c=16, grpc"][3] == "met"
    assert rows["harm_detector batching on / off, c=16"][3] == "met"  # 3.0x
    assert rows["soak, c=16, 5.0 min"][3] == "met"
    path = report.write(data, tmp_path)
    text = path.read_text()
    assert "| guard_benign | grpc | 16 | 250.00 |" in text
    assert "x.instances=2" in text
    with Image.open(tmp_path / "guard_benign.png") as im:
        assert im.format == "PNG" and im.size[0] > 100


# ---- code prototypes -----------------------------------------------------------------------------------------------


class _FakeSession:
    """Scores a row by the sum of its unmasked token ids; records the shape of every run."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []

    def run(self, names, feeds):
        import numpy as np

        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        self.shapes.append(ids.shape)
        return [(ids * mask).sum(axis=1, keepdims=True).astype(np.float32)]


def test_length_bucket_prototype_scores_like_one_padded_run(monkeypatch):
    import numpy as np

    from benchmarks.perf import prototypes
    from mllm_protector.onnx_classifier import OnnxClassifier

    monkeypatch.setattr(OnnxClassifier, "run", OnnxClassifier.run)  # restored after the test
    lengths = [3, 10, 4, 9, 1, 10, 2, 8, 3]
    width = max(lengths)
    ids = np.zeros((len(lengths), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = np.arange(1, n + 1) * (i + 1)
        mask[i, :n] = 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    clf = OnnxClassifier.__new__(OnnxClassifier)
    clf.session, clf.input_names, clf.output_names = _FakeSession(), list(feeds), ["harm_score"]
    clf.scores_pairs_alone = False  # an fp32 file: one run per batch
    expected = OnnxClassifier.run(clf, feeds)["harm_score"]
    full_runs = list(clf.session.shapes)

    exec(compile(prototypes.length_buckets(ratio=1.3, rows=3), "model.py", "exec"), {})
    clf.session = _FakeSession()
    got = OnnxClassifier.run(clf, feeds)["harm_score"]
    np.testing.assert_array_equal(got, expected)
    assert full_runs == [(len(lengths), width)]
    assert all(rows <= 3 for rows, _ in clf.session.shapes)
    assert sum(rows for rows, _ in clf.session.shapes) == len(lengths)
    assert sum(r * w for r, w in clf.session.shapes) < len(lengths) * width  # less padding


def test_patch_edit_appends_the_prototype_to_its_model(tmp_path):
    src = _fake_repository(tmp_path)
    repo = variants.make_variant(tmp_path / "out", "harm_classifier.patch=length_buckets", source=src,
                                 artifacts=tmp_path / "artifacts")
    text = (repo / "harm_classifier" / "1" / "model.py").read_text()
    assert text.startswith("# classifier") and "_bench_bucketed_run" in text
    with pytest.raises(variants.VariantError, match="is for harm_classifier"):
        variants.make_variant(tmp_path / "o2", "protector.patch=length_buckets", source=src,
                              artifacts=tmp_path / "artifacts")
    with pytest.raises(variants.VariantError, match="unknown patch"):
        variants.make_variant(tmp_path / "o3", "harm_classifier.patch=nope", source=src,
                              artifacts=tmp_path / "artifacts")


def test_cpu_descendants_follow_the_process_tree():
    from benchmarks.perf.cpu import descendants, snapshot

    snap = {1: (0, 5), 10: (1, 5), 11: (10, 5), 12: (11, 5), 20: (1, 5), 21: (20, 5)}
    assert descendants(snap, [10]) == {10, 11, 12}
    assert descendants(snap, [99]) == {99}
    live = snapshot()
    assert os.getpid() in live and live[os.getpid()][0] == os.getppid()
