#!/bin/sh
# Build (or reuse) a Debian chroot with GIMP 3 (and its Python bindings) and Krita, so the plug-ins
# can be tested against real editors of versions this host's apt does not have:
#   trixie (Debian 13): GIMP 3.0.x, Krita 5.2.x    sid: GIMP 3.2.x, Krita 5.3.x
#
# Usage: tests/gimp/build_chroot.sh [CHROOT_DIR]
#   FIXATIVE_CHROOT_SUITE picks the Debian suite (default trixie).
#   CHROOT_DIR defaults to $FIXATIVE_GIMP_CHROOT or /var/cache/fixative/gimp3-chroot for trixie,
#   /var/cache/fixative/sid-chroot for sid.
# The mirror is read from the host's apt sources at run time (override with FIXATIVE_DEBIAN_MIRROR).
# Idempotent: a complete chroot carries the marker file .fixative-gimp-ready and is reused.
# On a Debian 13 host it installs GIMP with apt instead (FIXATIVE_GIMP_FORCE_CHROOT=1: chroot anyway).
# Needs root and debootstrap.
set -eu

SUITE="${FIXATIVE_CHROOT_SUITE:-trixie}"
case "$SUITE" in
    trixie) DEFAULT_CHROOT=/var/cache/fixative/gimp3-chroot ;;
    *) DEFAULT_CHROOT=/var/cache/fixative/$SUITE-chroot ;;
esac
if [ "$SUITE" = trixie ]; then
    CHROOT="${1:-${FIXATIVE_GIMP_CHROOT:-$DEFAULT_CHROOT}}"
else
    CHROOT="${1:-$DEFAULT_CHROOT}"
fi
MARKER="$CHROOT/.fixative-gimp-ready"
PACKAGES="gimp python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 ca-certificates fonts-dejavu-core krita python3-pyqt5 xauth xvfb"

# On Debian 13 itself GIMP 3.0 comes straight from apt: no chroot needed (the tests then run
# gimp-console-3.0 from the host).
if [ -z "${FIXATIVE_GIMP_FORCE_CHROOT:-}" ] && [ -r /etc/os-release ] \
        && grep -q "^VERSION_CODENAME=$SUITE" /etc/os-release; then
    if ! command -v gimp-console-3.0 >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES
    fi
    echo "Debian $SUITE host: using the host's gimp-console-3.0"
    exit 0
fi

# The marker holds the package list it was built with: a chroot built with fewer packages (an older
# checkout) gets the missing ones installed; a complete one is reused as it is.
if [ -f "$MARKER" ] && [ "$(sed -n 2p "$MARKER")" = "$PACKAGES" ]; then
    echo "$SUITE chroot ready at $CHROOT (reused)"
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
echo "Building the $SUITE editors chroot at $CHROOT from $MIRROR"

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
    debootstrap --variant=minbase "$SUITE" "$CHROOT" "$MIRROR"
fi

for m in proc sys dev; do
    mkdir -p "$CHROOT/$m"
done
mount -t proc proc "$CHROOT/proc" && MOUNTED="proc $MOUNTED"
mount --rbind /sys "$CHROOT/sys" && MOUNTED="sys $MOUNTED"
mount --rbind /dev "$CHROOT/dev" && MOUNTED="dev $MOUNTED"
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true

# Signatures are checked as usual; only the Release file's expiry is not, since the mirror this host
# reaches may serve a snapshot of sid older than sid's 7-day validity window.
chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get -o Acquire::Check-Valid-Until=false update && apt-get install -y --no-install-recommends $PACKAGES"

# Smoke test: the console binary starts and the Gimp typelib loads in the chroot's Python.
chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    sh -c 'ls /usr/bin/gimp-console-3.* && python3 -c "import gi; gi.require_version(\"Gimp\", \"3.0\"); from gi.repository import Gimp" && command -v kritarunner'

printf '%s\n%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PACKAGES" > "$MARKER"
echo "$SUITE chroot ready at $CHROOT"
