#!/bin/sh
# Regenerate engine/data/demo.flac: the clip `emolive stream` plays when there is no microphone.
# Synthetic speech (espeak-ng) so the project ships no recorded voice and needs no licence for it;
# 16 kHz mono 16-bit FLAC, the engine's native format, so it plays without resampling.
# No dither (-D), so the script reproduces the committed file byte for byte.
set -eu
cd "$(dirname "$0")/.."
out=engine/data/demo.flac
tmp=$(mktemp --suffix=.wav)
trap 'rm -f "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp" \
  "Hello, this is emolive. It hears how active, how positive, and how dominant a voice sounds."
# A little silence at both ends, as a real recording would have.
sox -D "$tmp" -r 16000 -c 1 -b 16 "$out" pad 0.3 0.3
soxi -D "$out"
