#!/usr/bin/env bash
# Makes docs/img/krita-dock.png: real Krita under Xvfb, the installed plugin, a real engine.
# Usage: tests/krita/screenshot/make_screenshot.sh [OUTPUT_DIR]   (needs krita, xvfb-run, fixative)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
shared="${FIXATIVE_SHARED:-$repo/../shared}"
work="$(mktemp -d /tmp/fixative-shot.XXXXXX)"
out="${1:-$work/out}"
mkdir -p "$out" "$work/data/krita/pykrita" "$work/config" "$work/home"

# the plugin, laid out as the installer does (client modules inside the package)
cp -r "$repo/plugins/krita/fixative_krita" "$work/data/krita/pykrita/"
cp "$repo/plugins/common/fixative_client.py" "$repo/plugins/common/fixative_png.py" \
   "$work/data/krita/pykrita/fixative_krita/"
cp "$repo/engine/fixative/locations.py" "$work/data/krita/pykrita/fixative_krita/fixative_locations.py"
cp "$repo/plugins/krita/fixative_krita.desktop" "$work/data/krita/pykrita/"
cp -r "$repo/tests/krita/screenshot/fixative_shot" "$repo/tests/krita/screenshot/fixative_shot.desktop" \
   "$work/data/krita/pykrita/"
mkdir -p "$work/data/krita/actions"
cp "$repo/plugins/krita/fixative_krita.action" "$work/data/krita/actions/"
printf '[python]\nenable_fixative_krita=true\nenable_fixative_shot=true\n' > "$work/config/kritarc"

export FIXATIVE_HOME="$work/home" FIXATIVE_MODEL_DIR="$shared/models/taesd" FIXATIVE_OFFLINE=1
python3 -m fixative.cli serve --port 0 > "$work/engine.log" 2>&1 &
engine=$!
trap 'kill $engine 2>/dev/null || true' EXIT
for _ in $(seq 120); do [ -f "$work/home/state/engine.json" ] && break; sleep 0.5; done

# Krita embeds the system Python: keep pyenv/virtualenv interpreters off its PATH
krita_path="$(echo "$PATH" | tr ':' '\n' | grep -v -e '\.pyenv' -e '/venv' | paste -sd: -)"
env PATH="$krita_path" HOME="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" \
    FIXATIVE_SHOT_OUT="$out" FIXATIVE_SHOT_ART="$shared/art/starry_night_van_gogh_1889.jpg" \
    timeout 900 xvfb-run -a -s "-screen 0 1600x1000x24" krita --nosplash > "$work/krita.log" 2>&1 || true
ls -l "$out"
cat "$out/shot.log" 2>/dev/null || true
