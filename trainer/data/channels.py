"""Fixed, named channels: the same speech as a telephone line, an 8 kHz recorder, a noisy or
reverberant room or a quiet microphone would deliver it.

The shared corpora are studio recordings and users' audio is not: a model can hold up across
speakers and languages and still fail on the line a caller uses. These channels measure that
(benchmarks/channels.py: the same clips and labels, only the channel changed). Each is a
function of the clip and a seed, so a measurement repeats exactly. They are built from the
augmentation's steps (augment.py), where random chains of the same kind train a model; here
each kind is fixed at one setting, to say which channel costs what.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import fftconvolve

from emolive.trainer.data.augment import SAMPLE_RATE, coloured_noise, room_impulse_response, telephone, with_noise
from emolive.trainer.data.cache import read_audio
from emolive.trainer.errors import TrainerError

Channel = Callable[[np.ndarray, np.random.Generator], np.ndarray]

CHANNELS: dict[str, Channel] = {
    "clean": lambda x, rng: x,
    # a phone call: 300-3400 Hz at 8 kHz, G.711 mu-law coded
    "telephone": lambda x, rng: telephone(x, coded=True),
    # a recorder or VoIP stream at 8 kHz: everything above 4 kHz gone, no coding
    "8 kHz": lambda x, rng: soxr.resample(soxr.resample(x, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)[: len(x)],
    # steady pink noise (fans, traffic) 10 dB below the recording's mean power
    "noise 10 dB": lambda x, rng: with_noise(x, coloured_noise(len(x), rng, exponent=1.0), 10.0),
    # a living room: reverberation time 0.6 s
    "room 0.6 s": lambda x, rng: fftconvolve(x, room_impulse_response(0.6, rng))[: len(x)],
    # a distant or quiet microphone: 20 dB down
    "20 dB quieter": lambda x, rng: x * 0.1,
}
"""Channel name -> function of (16 kHz samples, generator) -> samples of the same length."""


def channel_rng(name: str, clip: str) -> np.random.Generator:
    """The generator of `name` applied to `clip` (a path relative to its manifest): the same noise
    and room for that clip in every run, and different ones for different clips."""
    digest = hashlib.sha1(f"{name}:{clip}".encode("utf-8", "surrogateescape")).digest()  # a name's bytes as they are
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def through_channel(samples: np.ndarray, name: str, clip: str) -> np.ndarray:
    """`samples` (float 16 kHz mono) as channel `name` delivers them, as float32 in [-1, 1]: a
    result that would clip is turned down instead, as a recordist would."""
    if name not in CHANNELS:
        raise TrainerError(f"unknown channel {name!r}: one of {', '.join(CHANNELS)}")
    y = CHANNELS[name](samples.astype(np.float64), channel_rng(name, clip))
    peak = float(np.abs(y).max()) if len(y) else 0.0
    return (y / max(1.0, peak)).astype(np.float32)


def copy_path(source: str) -> Path:
    """Where a clip's copy goes under the copy's folder: its own relative path as FLAC, or, for a
    manifest path that is absolute or climbs out of its folder, a folder named by its hash, so a
    copy can never be written over a source file or outside its folder."""
    path = Path(source)
    if path.is_absolute() or ".." in path.parts:
        path = Path("elsewhere") / hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:12] / path.name
    return path.with_suffix(".flac")


def write_channel_copy(manifest: Path, name: str, out: Path, keep: Callable[[dict], bool] = lambda row: True,
                       ) -> Path:
    """A copy of `manifest`'s corpus (the rows `keep` accepts) as heard through channel `name`:
    16-bit FLAC at 16 kHz under `out`, at the same relative paths, and `out`/manifest.csv with the
    same rows and labels. An existing copy is kept (the channel and its seeds are fixed)."""
    written = out / "manifest.csv"
    if written.is_file():
        return written
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], [row for row in reader if keep(row)]
    if not rows:
        raise TrainerError(f"{manifest}: no rows to copy")
    for row in rows:
        relative = copy_path(row["path"])
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        audio = through_channel(read_audio(manifest.parent / row["path"]), name, row["path"])
        sf.write(out / relative, audio, SAMPLE_RATE, subtype="PCM_16")
        row["path"] = str(relative)
    tmp = written.with_suffix(".tmp")  # the manifest last and atomically: an interrupted copy is redone
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(written)
    return written
