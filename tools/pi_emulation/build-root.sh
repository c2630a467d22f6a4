#!/usr/bin/env bash
# Build the emulated Pi: a static qemu-aarch64 and an aarch64 Python 3.11 root made from Debian
# bookworm's arm64 packages (the Python that Raspberry Pi OS bookworm ships).
#
# No root rights, binfmt or chroot: apt runs with a private configuration under $PI_CACHE/apt,
# packages are downloaded and unpacked with `dpkg -x`, and qemu is pointed at the root with -L.
# Idempotent: does nothing when qemu and the root are already there.
# Exit codes: 0 ready, 75 skipped (Debian mirror unreachable), 1 failed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# What `python3.11` and the wheels' compiled code (numpy, OpenCV, TFLite) load at run time.
ARM64_PACKAGES=(
    python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
    libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 libssl3
    libsqlite3-0 libuuid1 libcrypt1 libncursesw6 libtinfo6 libreadline8
)
ROOT_STAMP=$PI_ROOT/.fer-edge-pi-complete
QEMU_DIR=${PI_QEMU%/*}
# bookworm ships the static build as qemu-user-static; from trixie on, qemu-user is static.
case $PI_QEMU_SUITE in
bookworm) QEMU_PACKAGE=qemu-user-static ;;
*) QEMU_PACKAGE=qemu-user ;;
esac

describe() { echo "$(cat "$ROOT_STAMP"), qemu $(cat "$QEMU_DIR/VERSION") -cpu $PI_CPU"; }

if [[ -f $ROOT_STAMP && -x $PI_QEMU ]]; then
    log "emulated Pi ready: $(describe)"
    exit 0
fi

[[ -f $DEBIAN_KEYRING ]] ||
    skip "no Debian archive keyring at $DEBIAN_KEYRING (apt-get install debian-archive-keyring)"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    skip "apt-get and dpkg-deb not found: the emulated Pi is built on a Debian-based host"

APT_DIR=$PI_CACHE/apt
mkdir -p "$APT_DIR"/{state/lists/partial,cache/archives/partial,sources.list.d,preferences.d}
touch "$APT_DIR/state/status"
# The arm64 side is pinned to bookworm whatever the host runs, to match Pi OS bookworm; only
# amd64 lists are read for qemu's suite, so its packages never leak into the root.
k="signed-by=$DEBIAN_KEYRING"
main_archs=arm64
[[ $PI_QEMU_SUITE == "$DEBIAN_SUITE" ]] && main_archs=arm64,amd64
{
    echo "deb [arch=$main_archs $k] $DEBIAN_MIRROR/debian $DEBIAN_SUITE main"
    echo "deb [arch=arm64 $k] $DEBIAN_MIRROR/debian $DEBIAN_SUITE-updates main"
    echo "deb [arch=arm64 $k] $DEBIAN_MIRROR/debian-security $DEBIAN_SUITE-security main"
    [[ $PI_QEMU_SUITE == "$DEBIAN_SUITE" ]] ||
        echo "deb [arch=amd64 $k] $DEBIAN_MIRROR/debian $PI_QEMU_SUITE main"
} >"$APT_DIR/sources.list"
cat >"$APT_DIR/apt.conf" <<CONF
Dir::State "$APT_DIR/state";
Dir::State::status "$APT_DIR/state/status";
Dir::Cache "$APT_DIR/cache";
Dir::Etc::SourceList "$APT_DIR/sources.list";
Dir::Etc::SourceParts "$APT_DIR/sources.list.d";
Dir::Etc::Preferences "$APT_DIR/preferences";
Dir::Etc::PreferencesParts "$APT_DIR/preferences.d";
APT::Architecture "amd64";
APT::Architectures { "amd64"; "arm64"; };
Acquire::Languages "none";
CONF
# As root, apt hands downloads to the _apt user, who cannot write into a private cache.
[[ $(id -u) == 0 ]] && echo 'APT::Sandbox::User "root";' >>"$APT_DIR/apt.conf"
export APT_CONFIG=$APT_DIR/apt.conf

log "apt-get update (private lists: $DEBIAN_SUITE arm64, $PI_QEMU_SUITE amd64; $DEBIAN_MIRROR)"
apt-get -qq update --error-on=any >/dev/null 2>"$APT_DIR/update.log" ||
    skip "Debian mirror $DEBIAN_MIRROR not reachable ($(grep -m1 -E '^(E|W):' "$APT_DIR/update.log" || echo 'apt-get update failed'))"

# download DIR PACKAGE...: fetch .deb files into a fresh DIR.
download() {
    local dir=$1
    shift
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && apt-get -qq download "$@") || die "apt-get download $* failed"
}

# Each part is unpacked into a fresh folder and moved into place only once it is complete, so
# an interrupted run never leaves something that looks ready.
if [[ ! -x $PI_QEMU ]]; then
    log "downloading $QEMU_PACKAGE from $PI_QEMU_SUITE"
    download "$APT_DIR/debs-qemu" "$QEMU_PACKAGE:amd64"
    rm -rf "$QEMU_DIR.tmp" && mkdir -p "$QEMU_DIR.tmp"
    dpkg -x "$APT_DIR"/debs-qemu/*.deb "$QEMU_DIR.tmp/deb"
    # The package holds a qemu for every architecture; keep the one this needs.
    binary=$(find "$QEMU_DIR.tmp/deb/usr/bin" \( -name qemu-aarch64 -o -name qemu-aarch64-static \) \
        -print -quit)
    [[ -n $binary ]] || die "$QEMU_PACKAGE from $PI_QEMU_SUITE has no qemu-aarch64"
    mv "$binary" "$QEMU_DIR.tmp/qemu-aarch64"
    rm -rf "$QEMU_DIR.tmp/deb" "$APT_DIR/debs-qemu"
    "$QEMU_DIR.tmp/qemu-aarch64" --version | sed -nE '1s/.*version ([^ ]+).*/\1/p' \
        >"$QEMU_DIR.tmp/VERSION"
    rm -rf "$QEMU_DIR" && mv "$QEMU_DIR.tmp" "$QEMU_DIR"
fi

if [[ ! -f $ROOT_STAMP ]]; then
    log "downloading ${#ARM64_PACKAGES[@]} arm64 packages from $DEBIAN_SUITE"
    download "$APT_DIR/debs-arm64" "${ARM64_PACKAGES[@]/%/:arm64}"
    rm -rf "$PI_ROOT.tmp" && mkdir -p "$PI_ROOT.tmp"
    for deb in "$APT_DIR"/debs-arm64/*.deb; do
        dpkg -x "$deb" "$PI_ROOT.tmp"
    done
    "$PI_QEMU" -cpu "$PI_CPU" -L "$PI_ROOT.tmp" "$PI_ROOT.tmp/usr/bin/python3.11" -c \
        'import ctypes, lzma, sqlite3, ssl' || die "the aarch64 python3.11 does not start under qemu"
    version=$(cd "$APT_DIR/debs-arm64" && ls python3.11-minimal_*.deb | cut -d_ -f2)
    echo "Debian $DEBIAN_SUITE arm64 python3.11 $version" >"$PI_ROOT.tmp/${ROOT_STAMP##*/}"
    rm -rf "$APT_DIR/debs-arm64"
    rm -rf "$PI_ROOT" && mv "$PI_ROOT.tmp" "$PI_ROOT"
fi
log "emulated Pi ready: $(describe)"
