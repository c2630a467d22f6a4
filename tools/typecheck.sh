#!/usr/bin/env bash
# Type-check the package as it installs (see tools/installed.sh for why not in place), then the
# harness scripts in tools/ that ran as part of the package before they moved out of it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=$(command -v "${PYTHON:-python}")
tools/installed.sh "$PYTHON" -m mypy -p fer_edge
tools/installed.sh "$PYTHON" -m mypy "$PWD/tools/ci_bench.py" "$PWD/tools/soak.py" "$PWD/tools/faults.py"
