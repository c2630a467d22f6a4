#!/usr/bin/env bash
# Type-check the package as it installs (see tools/installed.sh for why not in place).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=$(command -v "${PYTHON:-python}")
exec tools/installed.sh "$PYTHON" -m mypy -p fer_edge
