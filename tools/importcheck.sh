#!/usr/bin/env bash
# Check the stage graph (docs/architecture.md): the import-linter contracts in pyproject.toml,
# run on the package as it installs (see tools/installed.sh for why not in place).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=$(command -v "${PYTHON:-python}")
# lint-imports, run by this Python whatever PATH holds.
exec tools/installed.sh "$PYTHON" -c \
    'import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())' \
    "$@"
