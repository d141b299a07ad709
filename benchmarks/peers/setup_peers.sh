#!/usr/bin/env bash
# Creates the peers' own virtual environments for benchmarks/bench_local.py (idempotent).
#
#   bash benchmarks/peers/setup_peers.sh            # into /work/bench-venvs (or $BENCH_VENVS)
#
# - st-onnx:   sentence-transformers with its ONNX extra (optimum pins an older transformers), for
#              CrossEncoder(backend="onnx") float32 and its own avx512_vnni dynamic int8 quantiser;
# - fastembed: fastembed's TextCrossEncoder (ONNX Runtime), float32 and int8.
# torch is the local CPU wheel (torch==2.13.0); an unpinned torch would pull the CUDA packages.
set -euo pipefail
ROOT="${BENCH_VENVS:-/work/bench-venvs}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$ROOT"

make_venv() {  # name, pip requirements...
  local name="$1"; shift
  local venv="$ROOT/$name"
  if [[ -f "$venv/.ready" ]]; then echo "$name: ready ($venv)"; return; fi
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip 2>&1 | { grep -v "is ignored" || true; }
  "$venv/bin/pip" install -q "$@" 2>&1 | { grep -v "is ignored" || true; }
  "$venv/bin/pip" freeze > "$venv/.ready"
  echo "$name: installed ($venv)"
}

make_venv st-onnx torch==2.13.0 "sentence-transformers[onnx]" numpy
make_venv fastembed "fastembed>=0.9" numpy
