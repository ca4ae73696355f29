"""Peak memory of one long file through `emolive score` against `emolive stream` on the same file.

Batch scoring keeps a whole-recording estimate (engine.whole: 5-minute pieces) and, with
`--per file`, no windows; its peak resident memory should not grow with the file's length, and
should stay near what `emolive stream` (which keeps nothing) needs. Files: real speech (EmoDB,
looped) and silence, each at several lengths; the peak RSS of each process is its own VmHWM (_common.peak_rss_mb).
Run (out of the test suite): .venv/bin/python benchmarks/long_file_memory.py --minutes 5 20 60
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import corpus_speech, peak_rss_mb, print_table  # first: it sets one thread for every library

import numpy as np
import soundfile as sf

EMOLIVE = str(Path(sys.executable).parent / "emolive")
LOOP_S = 120  # seconds of real speech, looped to each length


def write_file(path: Path, minutes: float, kind: str) -> Path:
    """`minutes` of looped speech or of silence, written in blocks (never whole in memory here)."""
    speech = corpus_speech("emodb", LOOP_S)
    total = int(minutes * 60 * 16000)
    with sf.SoundFile(path, "w", 16000, 1, format="FLAC") as out:
        for start in range(0, total, len(speech)):
            block = speech if kind == "speech" else np.zeros_like(speech)
            out.write(block[:total - start])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 20, 60])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("speech", "silence"):
            for minutes in args.minutes:
                path = write_file(Path(tmp) / f"{kind}-{minutes:g}.flac", minutes, kind)
                score = peak_rss_mb([EMOLIVE, "-q", "score", str(path), "--out", "-"])
                stream = peak_rss_mb([EMOLIVE, "-q", "stream", "--no-publish", "--json", "--source", str(path)])
                rows.append([kind, f"{minutes:g}", f"{score:.0f}", f"{stream:.0f}", f"{score / stream:.2f}"])
                path.unlink()
    print_table(["audio", "minutes", "score peak RSS MB", "stream peak RSS MB (reference)", "score / stream"], rows)


if __name__ == "__main__":
    main()
