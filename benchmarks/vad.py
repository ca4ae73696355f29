"""Which voice activity detector the engine uses: accuracy and cost, measured side by side in one run.

Candidates, all on 16 kHz mono audio, one thread:
- pitch voicing (the engine's old rule): a frame is speech when the front end calls it voiced;
- webrtcvad (webrtcvad-wheels, GMM on sub-band energies), 20 ms frames, aggressiveness 0-3;
- Silero VAD as the engine runs it (engine.vad: the package's ONNX graph on onnxruntime, 32 ms chunks,
  probability >= 0.5).
Signals: clips from each shared corpus (clean, and mixed with white/pink noise and with music at
10 dB SNR), and signals that are not speech: steady tones, a music-like harmonic melody with
chords and vibrato, white and pink noise, near-silence. Speech truth is per 20 ms frame: within
30 dB of the clip's loudest frame (pauses inside a clip count as non-speech).
Reported per detector: speech frames found (recall) on clean and noisy speech, frames called
speech on each non-speech signal (false alarms), and CPU seconds per audio second.
Run: .venv/bin/python benchmarks/vad.py [--clips-per-corpus 40]
"""
from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable

from _common import SHARED, print_table  # first: it sets one thread for every library

import numpy as np
import soundfile as sf

RATE, FRAME = 16000, 320  # the front end's 20 ms frame shift
CORPORA = ("emodb", "ravdess", "ased", "baved")
Detector = Callable[[np.ndarray], np.ndarray]  # samples -> bool per 20 ms frame


def pitch_voicing() -> Detector:
    from emolive.engine.features import FrontEndConfig, compute

    cfg = FrontEndConfig()

    def detect(x: np.ndarray) -> np.ndarray:
        voiced = compute(x)[:, cfg.num_features - 1] > cfg.pitch.voicing_threshold
        return np.pad(voiced, (0, max(0, len(x) // FRAME - len(voiced))))[:len(x) // FRAME]
    return detect


def webrtc(mode: int) -> Detector:
    import webrtcvad

    def detect(x: np.ndarray) -> np.ndarray:
        vad = webrtcvad.Vad(mode)
        pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
        return np.array([vad.is_speech(pcm[2 * i * FRAME:2 * (i + 1) * FRAME], RATE) for i in range(len(x) // FRAME)])
    return detect


def silero() -> Detector:
    """The engine's detector (engine.vad): Silero's graph, each 20 ms frame from the chunk holding its centre."""
    from emolive.engine.features import FrontEndConfig
    from emolive.engine.vad import SpeechDetector

    detector = SpeechDetector(FrontEndConfig())

    def detect(x: np.ndarray) -> np.ndarray:
        return np.concatenate([detector.push(x), detector.flush()])
    return detect


def harmonic_melody(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Notes of 0.25-0.6 s from a pentatonic scale, 3-note chords of 8-harmonic tones with vibrato and decay."""
    out, t0 = [], 0.0
    while t0 < seconds:
        length = rng.uniform(0.25, 0.6)
        t = np.arange(int(length * RATE)) / RATE
        note = np.zeros_like(t)
        for root in 220 * 2 ** (rng.choice([0, 2, 4, 7, 9, 12], 3) / 12):
            f = root * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * t))
            phase = 2 * np.pi * np.cumsum(f) / RATE
            note += sum(np.sin(k * phase) / k for k in range(1, 9))
        out.append(note * np.exp(-3 * t) * (1 - np.exp(-t / 0.01)))
        t0 += length
    x = np.concatenate(out)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    x = np.fft.irfft(spectrum, n)
    return (x / np.abs(x).max()).astype(np.float32)


def non_speech(rng: np.random.Generator, seconds: float = 20.0) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * RATE)) / RATE
    n = len(t)
    return {
        "tone 150 Hz": 0.3 * np.sin(2 * np.pi * 150 * t).astype(np.float32),
        "tone 440 Hz": 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32),
        "tone 1 kHz, quiet": 0.03 * np.sin(2 * np.pi * 1000 * t).astype(np.float32),
        "harmonic melody": harmonic_melody(seconds, rng),
        "white noise": (0.1 * rng.standard_normal(n)).astype(np.float32),
        "pink noise": 0.3 * pink(n, rng),
        "near silence": (1e-4 * rng.standard_normal(n)).astype(np.float32),
    }


def corpus_clips(count: int) -> list[np.ndarray]:
    clips = []
    for corpus in CORPORA:
        root = SHARED / "corpora" / corpus
        with open(root / "manifest.csv", newline="") as f:
            paths = [root / row["path"] for row in csv.DictReader(f)]
        for path in paths[::max(1, len(paths) // count)][:count]:
            clips.append(sf.read(path, dtype="float32")[0])
    return clips


def speech_truth(x: np.ndarray) -> np.ndarray:
    frames = x[:len(x) // FRAME * FRAME].reshape(-1, FRAME)
    energy = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return energy > energy.max() - 30


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.resize(noise, len(speech))
    gain = np.sqrt(np.mean(speech ** 2) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    return (speech + gain * noise).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-per-corpus", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clips = corpus_clips(args.clips_per_corpus)
    others = non_speech(rng)
    music = harmonic_melody(30.0, rng)
    speech_sets = {
        "clean speech": clips,
        "speech + white noise 10 dB": [mix(c, rng.standard_normal(len(c)).astype(np.float32), 10) for c in clips],
        "speech + pink noise 10 dB": [mix(c, pink(len(c), rng), 10) for c in clips],
        "speech + music 10 dB": [mix(c, music[(o := rng.integers(0, len(music) - len(c))):o + len(c)], 10)
                                 for c in clips],
    }
    truths = [speech_truth(c) for c in clips]
    detectors: dict[str, Detector] = {"pitch voicing (old rule)": pitch_voicing()}
    detectors.update({f"webrtcvad mode {m}": webrtc(m) for m in (0, 2, 3)})
    detectors["silero VAD (engine.vad)"] = silero()
    header = ["detector", *[f"recall: {name}" for name in speech_sets], *[f"false: {name}" for name in others],
              "CPU s per audio s"]
    rows = []
    audio_s = sum(len(c) for c in clips) / RATE
    for name, detect in detectors.items():
        detect(clips[0])  # compile / load once, outside the timing
        row = [name]
        cpu = 0.0
        for set_name, signals in speech_sets.items():
            found = total = 0
            for x, truth in zip(signals, truths):
                started = time.process_time()
                flags = detect(x)
                if set_name == "clean speech":
                    cpu += time.process_time() - started
                n = min(len(flags), len(truth))
                found += int(np.sum(flags[:n] & truth[:n]))
                total += int(np.sum(truth[:n]))
            row.append(f"{100 * found / total:.0f} %")
        for signal in others.values():
            row.append(f"{100 * np.mean(detect(signal)):.1f} %")
        row.append(f"{cpu / audio_s:.4f}")
        rows.append(row)
    print(f"{len(clips)} clips ({audio_s:.0f} s) from {', '.join(CORPORA)}; non-speech signals 20 s each\n")
    for part in (slice(0, 1 + len(speech_sets)), slice(1 + len(speech_sets), len(header))):
        cols = [0, *range(len(header))[part]] if part.start else list(range(len(header))[part])
        print_table([header[i] for i in cols], [[r[i] for i in cols] for r in rows])
        print()


if __name__ == "__main__":
    main()
