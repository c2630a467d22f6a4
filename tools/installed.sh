#!/usr/bin/env bash
# Run a command against the package as it installs: the stages live in top-level folders mapped
# onto fer_edge.* by package-dir, which mypy and import-linter cannot follow in an editable
# install, so the package is installed (no dependencies) into a temporary folder, pyproject.toml
# copied beside it, and the command run there with that folder first on PYTHONPATH.
#   tools/installed.sh python -m mypy -p fer_edge
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=$(command -v "${PYTHON:-python}")
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
# setuptools builds in build/lib and reuses it: a moved or deleted module would stay there and
# be installed (and checked) from it.
rm -rf build/lib
if ! "$PYTHON" -m pip install -q --no-deps --no-compile --target "$target" . >"$target/pip.log" 2>&1; then
    cat "$target/pip.log"
    exit 1
fi
cp pyproject.toml "$target/"
cd "$target"
PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" "$@"
