#!/bin/sh
# Run one command inside the GIMP chroot with /proc, /dev and /sys mounted, and unmount after.
#
# Usage: tests/gimp/run_in_chroot.sh CHROOT_DIR COMMAND [ARG...]
# The command runs with a clean environment plus HOME=/root; pass more variables through `env`
# in COMMAND. Prefers a private mount namespace (unshare), so the mounts vanish with the process
# even if it is killed; falls back to mount + umount on exit.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 CHROOT_DIR COMMAND [ARG...]" >&2
    exit 2
fi
CHROOT=$1
shift
if [ ! -f "$CHROOT/.fixative-gimp-ready" ]; then
    echo "$CHROOT is not a finished GIMP chroot: run tests/gimp/build_chroot.sh first" >&2
    exit 2
fi

if [ "${FIXATIVE_IN_PRIVATE_NS:-}" != 1 ] && command -v unshare >/dev/null 2>&1 \
        && unshare --mount --propagation private true 2>/dev/null; then
    FIXATIVE_IN_PRIVATE_NS=1 exec unshare --mount --propagation private "$0" "$CHROOT" "$@"
fi

MOUNTED=""
cleanup() {
    if [ "${FIXATIVE_IN_PRIVATE_NS:-}" != 1 ]; then
        for m in $MOUNTED; do
            umount -l "$CHROOT/$m" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT INT TERM
mount -t proc proc "$CHROOT/proc" && MOUNTED="proc $MOUNTED"
mount --rbind /dev "$CHROOT/dev" && MOUNTED="dev $MOUNTED"
mount --rbind /sys "$CHROOT/sys" && MOUNTED="sys $MOUNTED"

status=0
chroot "$CHROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" || status=$?
exit $status
