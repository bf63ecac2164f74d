#!/bin/sh
# Build (or reuse) a Debian 13 "trixie" chroot with GIMP 3.0 and its Python bindings, so the
# GIMP 3 plug-in can be tested against a real GIMP on any Debian/Ubuntu host.
#
# Usage: tests/gimp/build_chroot.sh [CHROOT_DIR]
#   CHROOT_DIR defaults to $FIXATIVE_GIMP_CHROOT or /var/cache/fixative/gimp3-chroot.
# The mirror is read from the host's apt sources at run time (override with FIXATIVE_DEBIAN_MIRROR).
# Idempotent: a complete chroot carries the marker file .fixative-gimp-ready and is reused.
# On a Debian 13 host it installs GIMP with apt instead (FIXATIVE_GIMP_FORCE_CHROOT=1: chroot anyway).
# Needs root and debootstrap.
set -eu

CHROOT="${1:-${FIXATIVE_GIMP_CHROOT:-/var/cache/fixative/gimp3-chroot}}"
MARKER="$CHROOT/.fixative-gimp-ready"
PACKAGES="gimp python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 ca-certificates"

# On Debian 13 itself GIMP 3.0 comes straight from apt: no chroot needed (the tests then run
# gimp-console-3.0 from the host).
if [ -z "${FIXATIVE_GIMP_FORCE_CHROOT:-}" ] && [ -r /etc/os-release ] \
        && grep -q '^VERSION_CODENAME=trixie' /etc/os-release; then
    if ! command -v gimp-console-3.0 >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES
    fi
    echo "Debian 13 host: using the host's gimp-console-3.0"
    exit 0
fi

if [ -f "$MARKER" ]; then
    echo "GIMP chroot ready at $CHROOT (reused)"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "build_chroot.sh must run as root (debootstrap, chroot, mount)" >&2
    exit 1
fi
command -v debootstrap >/dev/null 2>&1 || {
    echo "debootstrap is not installed: apt-get install debootstrap" >&2
    exit 1
}

# First Debian mirror found in the host's apt sources (deb822 "URIs:" or one-line "deb URL ...").
find_mirror() {
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
        [ -f "$f" ] || continue
        url=$(sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
                     -e 's/^[[:space:]]*deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' "$f" \
              | grep -v -e security -e '-updates' | grep -i debian | head -n 1)
        if [ -n "$url" ]; then
            echo "$url"
            return 0
        fi
    done
    return 1
}

MIRROR="${FIXATIVE_DEBIAN_MIRROR:-$(find_mirror || true)}"
if [ -z "$MIRROR" ]; then
    echo "no Debian mirror found in /etc/apt/sources*: set FIXATIVE_DEBIAN_MIRROR" >&2
    exit 1
fi
echo "Building GIMP chroot at $CHROOT from $MIRROR"

MOUNTED=""
cleanup() {
    for m in $MOUNTED; do
        umount -l "$CHROOT/$m" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

mkdir -p "$CHROOT"
if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
    # A half-finished debootstrap cannot be resumed reliably: start over.
    rm -rf "${CHROOT:?}"/* 2>/dev/null || true
    debootstrap --variant=minbase trixie "$CHROOT" "$MIRROR"
fi

for m in proc sys dev; do
    mkdir -p "$CHROOT/$m"
done
mount -t proc proc "$CHROOT/proc" && MOUNTED="proc $MOUNTED"
mount --rbind /sys "$CHROOT/sys" && MOUNTED="sys $MOUNTED"
mount --rbind /dev "$CHROOT/dev" && MOUNTED="dev $MOUNTED"
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true

chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update && apt-get install -y --no-install-recommends $PACKAGES"

# Smoke test: the console binary starts and the Gimp typelib loads in the chroot's Python.
chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    sh -c 'gimp-console-3.0 --version && python3 -c "import gi; gi.require_version(\"Gimp\", \"3.0\"); from gi.repository import Gimp"'

mkdir -p "$CHROOT/root/.config/GIMP/3.0/plug-ins"
date -u +%Y-%m-%dT%H:%M:%SZ > "$MARKER"
echo "GIMP chroot ready at $CHROOT"
