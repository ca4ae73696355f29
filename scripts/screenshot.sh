#!/usr/bin/env bash
# Renders the window playing the bundled demo clip and writes docs/screenshot.png (committed; the README shows it).
# Under Xvfb when xvfb-run is installed (the X11 platform users get), else on Qt's offscreen platform.
# The clip plays offline (every window evaluated), so the picture does not depend on the machine's speed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshot.png}"
mkdir -p "$(dirname "$out")"
gui=(.venv/bin/emolive gui --source engine/data/demo.flac --screenshot "$out")
if command -v xvfb-run >/dev/null; then
  QT_QPA_PLATFORM=xcb xvfb-run --auto-servernum --server-args="-screen 0 1280x800x24" "${gui[@]}"
else
  QT_QPA_PLATFORM=offscreen "${gui[@]}"
fi
echo "wrote $out ($(du -k "$out" | cut -f1) KB)"
