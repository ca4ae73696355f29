"""Voice activity: Silero VAD's ONNX graph on onnxruntime, shipped inside emolive (no torch).

Why Silero, measured by benchmarks/vad.py on 100 clips of the four shared corpora and on 20 s of
each non-speech signal (docs/benchmarks.md): it found 89 % of speech frames clean and 89-92 % at
10 dB SNR in white noise, pink noise and music, and called 0.0-0.2 % of frames speech in steady
tones, a harmonic melody, noise and near-silence. webrtcvad (every mode) called 440 Hz tones,
the melody and noise ~100 % speech; the pitch tracker's voicing (the old rule) 20-37 % of tones
and melody. Its cost: benchmarks/vad_calls.py.

Only a graph is used, from silero-vad 6.2.3 (MIT licence, `engine/data/silero_vad.LICENSE`): the
package's sequence form of the 16 kHz model, where one call takes every complete chunk of a block
(each with its 64 samples of context) and carries the LSTM state across calls, at a fraction of
one-chunk calls' cost and with their probabilities. Its STFT, a convolution of 258 filters of 256
taps, took a third of its time; numpy's FFT gives the same magnitudes (`magnitudes`) for a fraction
of that, and `engine/data/silero_vad_16k_encoder.onnx` is the rest of Silero's graph from there on,
weights unchanged (scripts/derive-vad-graph.py), checked against its sha256 when loaded. In it the
encoder's four convolutions, which onnxruntime ran one chunk at a time and which then took 88 % of
the graph's time, are each one matrix product over every chunk of a call (a third of the time). Silero's
whole graph stays in tests/data: tests/test_vad.py holds the two to the same probabilities. The
silero-vad package itself is not a dependency: it declares torch, which the live path never needs.
The graph takes 512-sample chunks with the previous chunk's last 64 samples as context and carries
a recurrent state; each front-end frame (20 ms shift) takes the probability of the chunk holding
its centre, so flags sit on the same frame grid as features, windows and turns.
"""
from __future__ import annotations

import errno
import functools
import hashlib
from pathlib import Path

import numpy as np

from emolive.engine.errors import EmoliveError
from emolive.engine.features.config import FrontEndConfig

CHUNK = 512  # samples per Silero call at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk the graph sees again
THRESHOLD = 0.5  # Silero's own default speech probability
GRAPH = Path(__file__).resolve().parent / "data" / "silero_vad_16k_encoder.onnx"
GRAPH_SHA256 = "25d87161fe74f987498b0177afbb834f3fd1028cde568692460e1d18666c300e"  # silero-vad 6.2.3's, past its STFT
# Silero's STFT: 256-sample frames every 128 samples, a periodic Hann window, each chunk and its context
# padded by reflection at its end by 64 samples: 4 frames of 129 magnitudes per chunk
FFT_SIZE, FFT_HOP, FFT_PAD = 256, 128, 64
WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FFT_SIZE) / FFT_SIZE)).astype(np.float32)


class VadError(EmoliveError):
    """The VAD's graph is missing or not the one emolive was measured with."""


@functools.cache
def _session():
    """One onnxruntime session per process, on one thread (a 32 ms chunk is too small a job for more)."""
    import onnxruntime as ort

    try:
        graph = GRAPH.read_bytes()
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):  # it was "missing; reinstall emolive", which it was not
            raise VadError(f"cannot open the voice activity graph {GRAPH}: {exc.strerror} (raise the limit, "
                           "e.g. ulimit -n 1024)") from None
        raise VadError(f"the voice activity graph {GRAPH} is missing ({exc.strerror}); reinstall emolive") from None
    if hashlib.sha256(graph).hexdigest() != GRAPH_SHA256:
        raise VadError(f"the voice activity graph {GRAPH} is not the one derived from silero-vad 6.2.3's (sha256 "
                       "differs); reinstall emolive")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class SpeechDetector:
    """Streaming speech flags on the front end's frame grid: `push` samples, get the frames now decided."""

    def __init__(self, cfg: FrontEndConfig, threshold: float = THRESHOLD) -> None:
        self.cfg, self.threshold = cfg, threshold
        self._session = _session()
        self._h = np.zeros((1, 1, 128), np.float32)  # the LSTM's state, carried from call to call
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)  # the last samples of the previous chunk
        self._pending = np.zeros(0, np.float32)  # samples not yet in a chunk
        self._probs = np.zeros(0, np.float32)  # chunk probabilities from chunk self._chunk0 on
        self._chunk0 = 0
        self._samples = 0  # samples pushed so far
        self._next = 0  # next frame to decide

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Flags (bool) for the frames whose centre chunk is now complete, oldest first."""
        self._samples += len(samples)
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = len(self._pending) // CHUNK * CHUNK
        self._run(self._pending[:whole])
        self._pending = self._pending[whole:]
        return self._decide(self._chunk0 + len(self._probs), cap=self._frames_so_far())

    def flush(self) -> np.ndarray:
        """End of stream: the last partial chunk (zero-padded) decides every remaining frame."""
        if len(self._pending):
            self._run(np.pad(self._pending, (0, CHUNK - len(self._pending))))
            self._pending = self._pending[:0]
        flags = self._decide(self._chunk0 + len(self._probs), frames=self._frames_so_far())
        self.__init__(self.cfg, self.threshold)  # ready for a new stream, as the front end is
        return flags

    def _run(self, samples: np.ndarray) -> None:
        """One graph call for every whole chunk of `samples` (a multiple of CHUNK long)."""
        if not len(samples):
            return
        feeds = {"magnitudes": magnitudes(chunks_with_context(self._context, samples)), "h": self._h, "c": self._c}
        probs, self._h, self._c = self._session.run(None, feeds)
        self._context = samples[-CONTEXT:].copy()
        self._probs = np.concatenate([self._probs, probs.astype(np.float32)])

    def _frames_so_far(self) -> int:
        """Frames the front end makes from the samples pushed so far (Kaldi's snip-edges count)."""
        n, cfg = self._samples, self.cfg
        return 0 if n < cfg.frame_length else 1 + (n - cfg.frame_length) // cfg.frame_shift

    def _decide(self, chunks_done: int, frames: int | None = None, cap: int | None = None) -> np.ndarray:
        """Flags for frames from self._next whose centre chunk is below `chunks_done` (at most `cap`
        frames in all), or for every frame up to `frames`."""
        cfg = self.cfg
        if frames is None:  # frame k's centre k*shift + length/2 must lie in a finished chunk
            frames = (chunks_done * CHUNK - cfg.frame_length // 2 - 1) // cfg.frame_shift + 1
            frames = max(self._next, min(frames, cap if cap is not None else frames))
        centres = (np.arange(self._next, frames) * cfg.frame_shift + cfg.frame_length // 2) // CHUNK
        chunk = np.minimum(centres, chunks_done - 1) - self._chunk0
        flags = self._probs[chunk] >= self.threshold if len(self._probs) else np.zeros(len(centres), bool)
        self._next = frames
        keep = (self._next * cfg.frame_shift + cfg.frame_length // 2) // CHUNK - self._chunk0  # the next frame's chunk
        if 0 < keep <= len(self._probs):
            self._probs, self._chunk0 = self._probs[keep:], self._chunk0 + keep
        return flags


def chunks_with_context(context: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Each CHUNK of `samples` (a multiple of CHUNK long) behind the CONTEXT samples before it, the
    first behind `context`: the graph's input rows, [chunks, CONTEXT + CHUNK]."""
    with_context = np.concatenate([context, samples])
    starts = np.arange(0, len(samples), CHUNK)
    return with_context[starts[:, None] + np.arange(CONTEXT + CHUNK)]


def magnitudes(chunks: np.ndarray) -> np.ndarray:
    """Silero's STFT magnitudes of `chunks` [n, 64 + 512], as its graph's convolution computes them:
    [n, 129 bins, 4 frames] float32."""
    padded = np.pad(chunks, ((0, 0), (0, FFT_PAD)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, FFT_SIZE, axis=1)[:, ::FFT_HOP]
    return np.abs(np.fft.rfft(frames * WINDOW, axis=-1)).astype(np.float32).transpose(0, 2, 1)


class SpeechFlags:
    """The recent frames' flags, so a window can ask what share of it was speech."""

    def __init__(self) -> None:
        self._flags = np.zeros(0, bool)
        self._first = 0  # absolute frame of self._flags[0]
        self.speech_frames = 0  # over the whole stream
        self.frames = 0

    def add(self, flags: np.ndarray) -> None:
        self._flags = np.concatenate([self._flags, flags])
        self.speech_frames += int(np.count_nonzero(flags))
        self.frames += len(flags)

    def fraction(self, first: int, count: int) -> float:
        """Share of frames [first, first + count) that are speech (frames not decided yet count as not)."""
        part = self._flags[max(0, first - self._first):max(0, first + count - self._first)]
        return float(np.count_nonzero(part)) / count if count else 0.0

    def drop_before(self, frame: int) -> None:
        drop = min(max(0, frame - self._first), len(self._flags))
        self._flags, self._first = self._flags[drop:], self._first + drop
