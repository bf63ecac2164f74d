#!/usr/bin/env bash
# Run Fixative's whole test suite: unit, engine, server, real Krita, real GIMP 3, gimpfu, installer,
# Ray batch and the small benchmarks. Installs what the tests need first (idempotent; needs root on
# Debian/Ubuntu for apt, debootstrap and network namespaces). ../shared must sit beside the checkout.
#   FIXATIVE_SKIP_SETUP=1  skip the install steps (everything already there)
#   extra arguments go to pytest (e.g. scripts/test.sh -k core)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

if [ -z "${FIXATIVE_SKIP_SETUP:-}" ]; then
    echo "== system packages (Krita, PyQt6 for the Qt shim check, Xvfb, debootstrap, iproute2)"
    need=""
    for pkg in krita python3-pyqt5 python3-pyqt6 xvfb xauth debootstrap iproute2; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
    done
    if [ -n "$need" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
    fi
    echo "== Python packages (torch from the local wheel cache via pip, the project with its dev extras)"
    python -m pip install -q torch==2.14.1 torchvision==0.29.1
    python -m pip install -q -e ".[dev]"
    echo "== editor chroots (reused when present): Debian 13 (GIMP 3.0, Krita 5.2), sid (GIMP 3.2, Krita 5.3)"
    bash tests/gimp/build_chroot.sh
    FIXATIVE_CHROOT_SUITE=sid bash tests/gimp/build_chroot.sh
fi

export FIXATIVE_REQUIRE_GIMP=1 FIXATIVE_REQUIRE_KRITA=1 FIXATIVE_REQUIRE_RAY=1
export FIXATIVE_OFFLINE=1 HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
export FIXATIVE_MODEL_DIR="${FIXATIVE_MODEL_DIR:-$repo/../shared/models/taesd}"

echo "== lint"
python -m ruff check .
vermin --no-tips --violations -t=2.7- -t=3.6- plugins/common/fixative_client.py engine/fixative/locations.py \
    plugins/common/fixative_png.py plugins/common/fixative_options.py plugins/common/fixative_plugin.py \
    plugins/common/fixative_pixels.py plugins/gimp/gimp2/fixative_protect.py

echo "== tests"
set +e
python -m pytest -q -p no:cacheprovider --durations=25 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit "$status"
