#!/usr/bin/env bash
# The emulated Raspberry Pi check, for CI and by hand: build (or reuse) the emulated Pi,
# install fer-edge the two ways a Pi can, into it and into this machine (install.sh), then run
# `fer-edge run` with each install on x86 and under emulation over the same videos and compare
# the outputs (compare.py): with fer-edge run's defaults (the bundled model, YuNet, the default
# crop and TTA), then strictly with a tiny model and Haar.
#
# Usage: check.sh [--out DIR] [compare.py options...]     (default DIR: runs/pi-emulation)
# Exit codes: 0 passed, 75 skipped (a package source is unreachable; the reason is printed),
# anything else failed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

out=$REPO/runs/pi-emulation
if [[ ${1:-} == --out ]]; then
    [[ $# -ge 2 ]] || die "--out needs a folder"
    out=$2
    shift 2
fi
extra=()
# qemu 7.2 segfaults inside LiteRT's interpreter: a fact about that qemu, not about fer-edge.
[[ $PI_QEMU_SUITE == bookworm ]] && extra=(--allow-crash litert)

start=$SECONDS
"$PI_TOOLS/build-root.sh"
"$PI_TOOLS/install.sh" litert tflite
"$PI_TOOLS/install.sh" --host litert tflite
"$HOST_PYTHON" "$PI_TOOLS/compare.py" --out "$out" "${extra[@]}" "$@"
log "passed in $((SECONDS - start)) s; report: $out/report.md"
