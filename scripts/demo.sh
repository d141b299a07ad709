#!/usr/bin/env bash
# Set up .venv (CPU torch from constraints.txt) and run the offline rerank demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rerank-layer demo
