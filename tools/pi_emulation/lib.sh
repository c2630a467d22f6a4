# Shared settings and helpers for the emulated Raspberry Pi scripts; sourced, not run.
#
# Everything downloaded or built lives in one cache folder outside the repository, so a second
# run reuses it and works offline:
#   $PI_CACHE/apt/      a private apt configuration and state (the host's apt is never touched)
#   $PI_CACHE/qemu-S/   Debian suite S's static qemu-aarch64
#   $PI_CACHE/root/     the aarch64 root: Debian's python3.11 and the C libraries it needs
#   $PI_CACHE/wheels/   aarch64 wheels from PyPI (plus the build backend for fer-edge's wheel)
#   $PI_CACHE/site/pi/P/, site/host/P/   profile P installed from those wheels for the emulated
#                       Pi and for this machine, fer-edge's own wheel included
# Delete a folder to refresh it.

# shellcheck shell=bash

PI_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$PI_TOOLS/../.." && pwd)
PI_CACHE=${FER_EDGE_PI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fer-edge-pi}
PI_ROOT=$PI_CACHE/root
# qemu 7.2 (bookworm) crashes inside LiteRT 2.3's interpreter; qemu 10.0 (trixie) runs it.
# Both are static binaries that run on any x86-64 Linux.
PI_QEMU_SUITE=${FER_EDGE_PI_QEMU_SUITE:-trixie}
PI_QEMU=$PI_CACHE/qemu-$PI_QEMU_SUITE/qemu-aarch64
PI_WHEELS=$PI_CACHE/wheels
PI_SITE=$PI_CACHE/site
# The Pi 4's core. Raspberry Pi OS bookworm is Debian 12 with Python 3.11 and glibc 2.36.
PI_CPU=${FER_EDGE_PI_CPU:-cortex-a72}
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${FER_EDGE_PI_DEBIAN_MIRROR:-http://deb.debian.org}
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PIP_INDEX=${PIP_INDEX_URL:-https://pypi.org/simple/}
# Host tools (pip for downloads, the x86 reference run): the repo's venv unless told otherwise.
HOST_PYTHON=${FER_EDGE_HOST_PYTHON:-$REPO/.venv/bin/python}
# The source tree whose fer-edge wheel is installed: this checkout unless told otherwise.
FER_EDGE_SRC=${FER_EDGE_PI_SRC:-$REPO}

# Exit code meaning "could not check: a package source is unreachable" (EX_TEMPFAIL).
SKIP_CODE=75

log() { echo "pi-emulation: $*" >&2; }

die() {
    echo "pi-emulation: error: $*" >&2
    exit 1
}

skip() {
    echo "skipped: $*" >&2
    exit "$SKIP_CODE"
}

# reachable URL: true when URL answers an HTTP request within 15 s (any HTTP status counts).
reachable() {
    "$HOST_PYTHON" - "$1" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=15)
except urllib.error.HTTPError:
    pass  # the server answered
except OSError:
    sys.exit(1)
PY
}

# pip on the host, told to pick wheels for the Pi instead of for this machine. pip does not
# widen an explicit manylinux_2_X tag to older ones, so every glibc up to the Pi's 2.36 is listed.
pip_for_pi() {
    local platforms=() v
    for v in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
    "$HOST_PYTHON" -m pip "$@" --python-version 3.11 --implementation cp --abi cp311 \
        "${platforms[@]}" --platform manylinux2014_aarch64
}
