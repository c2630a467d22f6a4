#!/usr/bin/env bash
# Run a command on the emulated Pi (Cortex-A72, aarch64 Python 3.11) with one installed profile,
# or with --host the same profile's install on this machine (the x86 reference).
#
# Usage: pi-run.sh [--host] PROFILE python ARGS...    e.g. pi-run.sh tflite python -c 'import cv2'
#        pi-run.sh [--host] PROFILE fer-edge ARGS...  e.g. pi-run.sh tflite fer-edge --version
#        pi-run.sh [--host] PROFILE describe          the platform and the profile's packages
# `fer-edge` runs the console script that pip generated from the wheel's entry points.
# Paths are the host's: qemu looks a path up in the aarch64 root first, then on the host.
# The command's exit status is passed through (139 is a segfault inside the emulated process).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

platform=pi
host_opt=
if [[ ${1:-} == --host ]]; then
    platform=host
    host_opt="--host "
    shift
fi
[[ $# -ge 2 ]] || die "usage: pi-run.sh [--host] PROFILE python|fer-edge|describe [ARGS...]"
profile=$1
command=$2
shift 2
site=$PI_SITE/$platform/$profile
[[ -f $site/.fer-edge-pi-profile ]] ||
    die "profile '$profile' is not installed: run tools/pi_emulation/install.sh $host_opt$profile"
if [[ $platform == pi ]]; then
    [[ -x $PI_QEMU && -f $PI_ROOT/.fer-edge-pi-complete ]] ||
        die "no emulated Pi in $PI_CACHE: run tools/pi_emulation/build-root.sh first"
    # -L makes qemu look up absolute paths (the loader, libc, the stdlib) in the root first.
    python=("$PI_QEMU" -cpu "$PI_CPU" -L "$PI_ROOT" "$PI_ROOT/usr/bin/python3.11")
    where="$(cat "$PI_ROOT/.fer-edge-pi-complete"); qemu $(cat "${PI_QEMU%/*}/VERSION") -cpu $PI_CPU"
else
    # -S: no site-packages, so nothing from the venv can stand in for the profile's packages.
    python=("$HOST_PYTHON" -S)
    where="host $(uname -m), $("$HOST_PYTHON" -c 'import platform; print("Python", platform.python_version())')"
fi
case $command in
python) args=("$@") ;;
fer-edge) args=("$site/bin/fer-edge" "$@") ;;
describe)
    echo "$where"
    cat "$site/.fer-edge-pi-profile"
    exit 0
    ;;
*) die "unknown command '$command' (known: python, fer-edge, describe)" ;;
esac

exec env -u PYTHONHOME -u VIRTUAL_ENV PYTHONPATH="$site" PYTHONNOUSERSITE=1 "${python[@]}" "${args[@]}"
