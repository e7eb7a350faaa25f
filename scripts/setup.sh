#!/usr/bin/env bash
# Idempotent setup for `make serve` / `make test`: the project venv, perf_analyzer's own venv, the served artifacts.
# A second run only checks stamps and is fast.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
log() { printf '[setup] %s\n' "$*" >&2; }

stamp=".venv/.stamp-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"

# A fresh setup writes ~4 GB (.venv 2.5 GB, artifacts/ 1.4 GB): a full disk should be named before pip fails on it.
if [ ! -f "$stamp" ] || [ ! -d artifacts/detoxifier ]; then
  free_gb=$(df -Pk . | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
  if [ "${free_gb:-0}" -lt 5 ]; then
    log "warning: ${free_gb} GB free on this disk; a fresh setup writes ~4 GB (.venv 2.5 GB, artifacts/ 1.4 GB)"
  fi
fi

# 1. Project venv on Python 3.11 (the Triton 3.11 stub embeds it), numpy < 2, the verified stack.
if [ ! -f "$stamp" ]; then
  log "installing the project venv (.venv) from requirements.lock"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  rm -f .venv/.stamp-*
  touch "$stamp"
fi

# 2. perf_analyzer 2.51 comes inside the tritonclient 2.51.0 wheel; its own small venv keeps it off the project's.
if [ ! -x .venv-perf/bin/perf_analyzer ]; then
  log "installing perf_analyzer 2.51 (.venv-perf)"
  "$PYTHON" -m venv .venv-perf
  .venv-perf/bin/python -m pip install -q --disable-pip-version-check --no-deps tritonclient==2.51.0
fi

# 3. Every served artifact (skips what is already built).
.venv/bin/mllm-protector-export

# 4. promtool, for the alert rules' tests (tests/test_deploy.py): the binary alone, taken out of Debian's prometheus
# package (Debian 12: 2.42); no Prometheus server is installed or started.
if [ ! -x .venv/bin/promtool ]; then
  log "fetching promtool from Debian's prometheus package"
  tmp=$(mktemp -d)
  if (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; }) \
      && dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" && [ -x "$tmp/x/usr/bin/promtool" ]; then
    cp "$tmp/x/usr/bin/promtool" .venv/bin/promtool
  else
    log "warning: could not fetch promtool (apt-get download prometheus); the alert-rule tests will fail"
  fi
  rm -rf "$tmp"
fi
