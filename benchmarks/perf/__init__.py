"""perf_analyzer load tests: input data, suites, runner, report (see benchmarks/README.md)."""
