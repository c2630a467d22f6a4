#!/usr/bin/env bash
# Install fer-edge the way `pip install` would on a Pi, once per profile:
#   litert  fer-edge[device]                            (the default Pi install: LiteRT, numpy 2)
#   tflite  fer-edge tflite-runtime==2.14.0 'numpy<2'   (the fallback where LiteRT fails)
# into the emulated Pi (aarch64, CPython 3.11, glibc 2.36: Pi OS bookworm), or with --host into
# this machine's own architecture, so the x86 reference runs the very same install.
# fer-edge's wheel is built from the working tree (uncommitted code is what gets tested) and pip
# resolves its declared dependencies. Wheels are cached in $PI_WHEELS and installs run offline
# from there; PyPI is asked only for wheels the cache lacks.
#
# Usage: install.sh [--host] [PROFILE...]   (default: litert tflite)
# Exit codes: 0 installed, 75 skipped (PyPI unreachable and the cache incomplete), 1 failed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

platform=pi
pip_cmd=(pip_for_pi)
if [[ ${1:-} == --host ]]; then
    platform=host
    pip_cmd=("$HOST_PYTHON" -m pip)
    shift
fi

requirements() {
    case $1 in
    litert) echo "fer-edge[device]" ;;
    tflite) echo "fer-edge tflite-runtime==2.14.0 numpy<2" ;;
    *) die "unknown profile '$1' (known: litert, tflite)" ;;
    esac
}

# fetch WHAT CMD...: run a download; if it fails, skip when PyPI is unreachable, else fail.
fetch() {
    local what=$1
    shift
    "$@" && return 0
    reachable "$PIP_INDEX" || skip "PyPI ($PIP_INDEX) not reachable and no cached $what"
    die "cannot download $what from $PIP_INDEX (see pip's message above)"
}

profiles=("$@")
[[ ${#profiles[@]} -gt 0 ]] || profiles=(litert tflite)
for profile in "${profiles[@]}"; do requirements "$profile" >/dev/null; done
mkdir -p "$PI_WHEELS/build" "$PI_SITE/$platform"

# 1. fer-edge's wheel, built from a copy of the tree so the build leaves nothing in the repo.
DIST=$PI_CACHE/dist-$platform
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -C "$FER_EDGE_SRC" -cf - --exclude=.git --exclude=.venv --exclude=runs --exclude=build \
    --exclude=dist --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
    --exclude=.ruff_cache . | tar -C "$src" -xf -
build_wheel() {
    rm -rf "$DIST"
    "$HOST_PYTHON" -m pip wheel -q --no-deps --no-index --find-links "$PI_WHEELS/build" \
        -w "$DIST" "$src" 2>"$PI_CACHE/wheel-build.log"
}
if ! build_wheel; then
    # The build backend (setuptools, wheel) is fetched once and then reused offline.
    fetch "build backend for fer-edge's wheel" \
        "$HOST_PYTHON" -m pip download -q -d "$PI_WHEELS/build" "setuptools>=77" wheel
    build_wheel || die "building fer-edge's wheel failed: $(tail -n 3 "$PI_CACHE/wheel-build.log")"
fi
wheel=$(ls "$DIST"/fer_edge-*-py3-none-any.whl)
log "built ${wheel##*/}"

# 2. One site folder per profile, replaced whole so a stale package never lingers.
# install_offline DEST LOG REQ...: install from the cached wheels only.
install_offline() {
    local dest=$1 logfile=$2
    shift 2
    rm -rf "$dest"
    "${pip_cmd[@]}" install -q --only-binary=:all: --no-index --find-links "$PI_WHEELS" \
        --find-links "$DIST" --target "$dest" --no-compile "$@" 2>"$logfile"
}
for profile in "${profiles[@]}"; do
    read -ra reqs <<<"$(requirements "$profile")"
    target=$PI_SITE/$platform/$profile
    logfile=$PI_CACHE/install-$platform-$profile.log
    if ! install_offline "$target.tmp" "$logfile" "${reqs[@]}"; then
        log "$platform/$profile: fetching wheels for: ${reqs[*]}"
        fetch "wheels for $platform/$profile" \
            "${pip_cmd[@]}" download -q --only-binary=:all: -d "$PI_WHEELS" --find-links "$DIST" \
            "${reqs[@]}"
        # pip copies fer-edge's wheel too; a stale copy must never shadow the fresh build.
        rm -f "$PI_WHEELS"/fer_edge-*.whl
        install_offline "$target.tmp" "$logfile" "${reqs[@]}" ||
            die "$platform/$profile: pip install failed: $(tail -n 3 "$logfile")"
    fi
    rm -rf "$target"
    mv "$target.tmp" "$target"
    versions=$(cd "$target" && ls -d ./*.dist-info | sed -E 's|^\./||; s|\.dist-info$||; s|-| |' |
        tr '\n' ',' | sed 's/,$//; s/,/, /g')
    echo "$versions" >"$target/.fer-edge-pi-profile"
    log "$platform/$profile: $versions"
done
