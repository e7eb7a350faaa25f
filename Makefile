# The README's two commands: `make serve` and `make test`. Both set up whatever is missing first.
SHELL := /bin/bash
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002
PY := .venv/bin/python

.PHONY: setup serve test lint train-detector train-detox eval eval-safety bench soak fuzz clean

setup:
	@bash scripts/setup.sh

## Serve the protected pipeline on 127.0.0.1 in the foreground (Ctrl-C stops it).
serve: setup
	$(PY) -m mllm_protector.serve --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

## Unit tests, then integration tests against a real tritonserver.
test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: setup
	$(PY) -m ruff check .

## Rebuild the committed detector weights (weights/harm_detector) from the packaged data.
train-detector: setup
	$(PY) -m mllm_protector.export.detector_train
	$(PY) -m mllm_protector.export.detector_categories
	$(PY) -m mllm_protector.export.detector_calibrate

## Rebuild the committed detoxifier adapter (weights/detoxifier); the next setup merges it into artifacts/detoxifier.
train-detox: setup
	$(PY) -m mllm_protector.export.detox_train --threads 2

## perf_analyzer load tests (benchmarks/README.md); prints the table, writes benchmarks/results/perf/.
bench: setup
	$(PY) benchmarks/bench.py

## Reliability runs (README "Reliability"): 5-minute soak at concurrency 16 on loopback (failures, RSS growth);
## a long randomised fuzzing run of request decoding.
soak: setup
	$(PY) benchmarks/soak.py

fuzz: setup
	$(PY) benchmarks/fuzz.py

## Detector and detoxifier quality on the held-out test split.
eval: setup
	$(PY) benchmarks/eval_detector.py
	$(PY) benchmarks/eval_detox.py

EVAL_URL ?=
EVAL_OUT ?= artifacts/eval-safety
EVAL_ARGS ?=

## Safety evaluation (built-in set): attack success rate without/with the guard, benign retention; table on stdout,
## report.md, summary.json and PNG charts in $(EVAL_OUT). Starts a local CPU server unless EVAL_URL=host:port is given.
eval-safety: setup
	$(PY) benchmarks/eval_safety.py $(if $(EVAL_URL),--url $(EVAL_URL),--serve) --out $(EVAL_OUT) $(EVAL_ARGS)

clean:
	rm -rf artifacts .tritonserver model_repository/harm_classifier/1/model.onnx model_repository/harm_classifier/1/model.int8.onnx model_repository/harm_tokenizer/1/tokenizer
