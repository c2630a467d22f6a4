#!/usr/bin/env bash
# Type-check the package as it installs: the stages live in top-level folders mapped onto
# fer_edge.* by package-dir, which mypy cannot follow in an editable install, so the package is
# installed (no dependencies) into a temporary folder and checked there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=$(command -v "${PYTHON:-python}")
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
if ! "$PYTHON" -m pip install -q --no-deps --no-compile --target "$target" . >"$target/pip.log" 2>&1; then
    cat "$target/pip.log"
    exit 1
fi
cp pyproject.toml "$target/"
cd "$target"
"$PYTHON" -m mypy -p fer_edge
