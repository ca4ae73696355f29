#!/usr/bin/env bash
# Installs the Debian packages emolive needs (audio I/O, GStreamer, speech synthesis for the
# demo clip, a virtual X server for screenshots, PulseAudio for the tests' virtual microphone, a C
# compiler and Python's headers for the front end's ahead-of-time kernels).
# Skips apt entirely when all are present.
set -euo pipefail
PKGS=(libportaudio2 libsndfile1 gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      espeak-ng sox xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libegl1 libxkbcommon-x11-0
      libgl1 libfontconfig1 libdbus-1-3 pulseaudio pulseaudio-utils libasound2-plugins gcc python3-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
