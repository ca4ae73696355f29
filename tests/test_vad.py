"""Speech, not sound: the VAD's flags (streaming = offline, on the front end's frame grid), tones, music and
noise never called speech, and speech turns from contiguous speech with a minimum length and a hang-over."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import emolive
from emolive.engine.features import FrontEndConfig, compute
from emolive.engine.features.normalise import as_one_stream
from emolive.engine.turns import TurnOptions, TurnSpan, TurnTracker
from emolive.engine.vad import SpeechDetector
from tests.conftest import corpus_files, read_audio

CFG = FrontEndConfig()
RATE = 16000


def flags_of(x: np.ndarray, chunks: list[int] | None = None) -> np.ndarray:
    detector, out, pos = SpeechDetector(CFG), [], 0
    for n in chunks or [len(x)]:
        out.append(detector.push(x[pos:pos + n]))
        pos += n
    out.append(detector.push(x[pos:]))
    return np.concatenate([*out, detector.flush()])


def test_flags_sit_on_the_front_ends_frames_whatever_the_chunking(speech):
    x = speech[:RATE * 4 + 123]
    whole = flags_of(x)
    assert len(whole) == len(compute(x))
    rng = np.random.default_rng(0)
    for _ in range(3):
        chunks = list(rng.integers(1, 5000, size=40))
        np.testing.assert_array_equal(flags_of(x, chunks), whole)
    assert whole.mean() > 0.6  # corpus speech: most frames


def tone(hz: float, seconds: float = 6.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def harmonic_chords(seconds: float = 6.0) -> np.ndarray:
    """Music-like: 0.4 s chords of three 8-harmonic tones with vibrato and a decaying envelope."""
    rng, notes = np.random.default_rng(1), []
    t = np.arange(int(0.4 * RATE)) / RATE
    for _ in range(int(seconds / 0.4)):
        note = np.zeros_like(t)
        for root in 196 * 2 ** (rng.choice([0, 3, 5, 7, 10, 12], 3) / 12):
            phase = 2 * np.pi * np.cumsum(root * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * t))) / RATE
            note += sum(np.sin(k * phase) / k for k in range(1, 9))
        notes.append(note * np.exp(-3 * t))
    x = np.concatenate(notes)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


NOT_SPEECH = {
    "tone 150 Hz": lambda: tone(150),
    "tone 440 Hz": lambda: tone(440),
    "tone 1 kHz quiet": lambda: tone(1000, amplitude=0.02),
    "harmonic chords": harmonic_chords,
    "white noise": lambda: (0.1 * np.random.default_rng(2).standard_normal(6 * RATE)).astype(np.float32),
}


@pytest.fixture(scope="module")
def student(one_torch_thread):
    return emolive.load_model("student")


@pytest.mark.parametrize("name", sorted(NOT_SPEECH))
def test_tones_music_and_noise_are_not_speech(student, name):
    result = emolive.analyze(NOT_SPEECH[name](), sample_rate=RATE, model=student)
    assert len(result.windows) >= 6
    assert not any(w["speech"] for w in result.windows), [w["start"] for w in result.windows if w["speech"]]
    assert result.turns == [] and result.whole["speech"] is False


def test_the_old_voicing_rule_would_have_called_the_tone_speech():
    """Why the VAD: the pitch tracker rightly calls a tone voiced, so voicing is no speech test."""
    voicing = compute(tone(150))[:, CFG.num_features - 1] > CFG.pitch.voicing_threshold
    assert voicing.mean() > 0.1 and not flags_of(tone(150)).any()


@pytest.fixture(scope="module")
def two_utterances() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Two corpus clips with 2 s of near-silence before, between and after them."""
    clips = [read_audio(p) for p in corpus_files("ravdess", every=300, limit=2)]
    gap = (1e-4 * np.random.default_rng(3).standard_normal(2 * RATE)).astype(np.float32)
    parts, spans, t = [gap], [], 2.0
    for clip in clips:
        parts += [clip, gap]
        spans.append((t, t + len(clip) / RATE))
        t += len(clip) / RATE + 2.0
    return np.concatenate(parts), spans


def test_speech_turns_follow_the_utterances_and_each_is_the_model_over_its_span(student, two_utterances):
    x, spans = two_utterances
    result = emolive.analyze(x, sample_rate=RATE, model=student)
    assert len(result.turns) == 2
    for turn, (start, end), seq in zip(result.turns, spans, range(2)):
        emolive.engine.schema.validate_turn(turn)
        assert turn["kind"] == "turn" and turn["seq"] == seq and turn["speech"] is True
        # a turn lies within its clip, give or take the VAD's reaction: Silero's probability rises within a
        # 32 ms chunk or two and decays over a few after speech stops, and a frame reaches 25 ms past its start
        assert start - 0.1 <= turn["start"] < turn["end"] <= end + 0.2 and turn["end"] - turn["start"] > 0.5
        first, last = round(turn["start"] * RATE) // 320, round(turn["end"] * RATE - 400) // 320
        frames = as_one_stream(compute(x), student.meta.stream_normalisation)[first:last + 1]
        want = student.predict(frames, x[first * 320:last * 320 + 400]).avd
        # same frames (streamed = offline), one model call each: float32 summation order only
        np.testing.assert_allclose([turn[k] for k in ("activation", "valence", "dominance")],
                                   np.clip(want, 1, 7), atol=1e-5)
    assert result.whole["kind"] == "stream" and result.whole["seq"] == 2
    speech_windows = [w for w in result.windows if w["speech"]]
    assert speech_windows and all(any(s - 3.0 < w["start"] < e for s, e in spans) for w in speech_windows)


def tracker(flags: str, **options: float) -> list[TurnSpan]:
    """Frames of 0.1 s: '1' speech, '0' not."""
    turns = TurnTracker(TurnOptions(**options), frame_s=0.1)
    turns.add(np.array([c == "1" for c in flags]))
    turns.finish()
    return turns.pending


def test_a_pause_shorter_than_the_hangover_stays_inside_the_turn():
    assert tracker("0011110011110000", min_s=0.3, hangover_s=0.3) == [TurnSpan(2, 12)]
    assert tracker("0011110001111000", min_s=0.3, hangover_s=0.3) == [TurnSpan(2, 6), TurnSpan(9, 13)]


def test_too_little_speech_is_no_turn_and_long_turns_are_cut():
    assert tracker("0010000110000", min_s=0.3, hangover_s=0.2) == []
    assert tracker("1" * 25, min_s=0.3, hangover_s=0.2, max_s=1.0) == [TurnSpan(0, 10), TurnSpan(10, 20),
                                                                         TurnSpan(20, 25)]
    # a pause straddling the limit: the turn ended at the speech after it, 12 frames of a 10-frame limit
    assert tracker("1" * 9 + "00" + "1" * 5, min_s=0.3, hangover_s=0.5, max_s=1.0) == [TurnSpan(0, 9),
                                                                                         TurnSpan(11, 16)]


def test_the_stream_end_closes_an_open_turn_at_its_last_speech_frame():
    assert tracker("000111110", min_s=0.3, hangover_s=0.5) == [TurnSpan(3, 8)]


def test_turns_are_published_on_zeromq_beside_the_windows(student, two_utterances, tmp_path):
    import json
    import time

    import soundfile as sf
    import zmq

    from emolive.engine.runner import Runner
    from emolive.engine.sinks import ZmqPublisher
    from emolive.engine.sources import FileSource

    path = tmp_path / "two.flac"
    sf.write(path, two_utterances[0], RATE)
    with zmq.Context.instance().socket(zmq.SUB) as sub, ZmqPublisher("tcp://127.0.0.1:*") as publisher:
        sub.setsockopt(zmq.SUBSCRIBE, b"turn.")
        sub.setsockopt(zmq.SUBSCRIBE, b"avd.")
        sub.connect(publisher.address)
        assert publisher.wait_for_subscriber(5.0)
        time.sleep(0.2)  # both subscriptions reach the XPUB (they arrive one by one)
        with FileSource(path) as source:
            Runner(source, student, [publisher], stream_id="two").run()
        topics = []
        while sub.poll(1000):
            name, body = sub.recv_multipart()
            topics.append(name)
            if name.startswith(b"turn."):
                turn = json.loads(body)
                emolive.engine.schema.validate_turn(turn)
                assert name == b"turn.two" and turn["kind"] == "turn"
    assert topics.count(b"turn.two") == 2 and topics.count(b"avd.two") > 10


SILERO_GRAPH = Path(__file__).resolve().parent / "data" / "silero_vad_16k_sequence.onnx"  # silero-vad 6.2.3's own


def test_one_call_per_block_gives_silero_s_own_probabilities_of_one_call_per_chunk(speech):
    """The engine's detector (numpy's FFT, then the rest of Silero's graph, every chunk of a block in
    one call) against Silero's whole graph (its STFT a 256-tap convolution) called chunk by chunk, as
    the package runs it. An FFT and a dot product give the same magnitudes to float32 rounding
    (~1e-7 relative); through the network that measured 1.2e-6 here and 4e-6 at most on 143 s of
    speech, so 1e-4 leaves room for any FFT or BLAS build, while a symmetric instead of a periodic
    Hann window moves probabilities by 3e-3 and zero instead of reflected padding by 6e-2."""
    import onnxruntime

    from emolive.engine.vad import CHUNK, CONTEXT

    x = speech[:CHUNK * 60]
    detector = SpeechDetector(CFG)
    detector._run(x)  # 60 chunks in one call
    silero = onnxruntime.InferenceSession(str(SILERO_GRAPH), providers=["CPUExecutionProvider"])
    h = c = np.zeros((1, 1, 128), np.float32)
    context, one_by_one = np.zeros(CONTEXT, np.float32), []
    for start in range(0, len(x), CHUNK):
        chunk = np.concatenate([context, x[start:start + CHUNK]])[None]
        prob, h, c = silero.run(None, {"input": chunk, "h": h, "c": c})
        context = x[start + CHUNK - CONTEXT:start + CHUNK]
        one_by_one.append(prob[0])
    np.testing.assert_allclose(detector._probs, one_by_one, atol=1e-4)
    assert (detector._probs > 0.5).mean() > 0.5  # speech: the test compares real probabilities


def test_the_window_is_the_one_in_silero_s_stft():
    """Silero's convolution filters are a window times the DFT's cosines and sines: its first (0 Hz)
    filter is the window itself, float32-rounded."""
    import onnx
    from onnx import numpy_helper

    from emolive.engine.vad import WINDOW

    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(SILERO_GRAPH).graph.initializer}
    np.testing.assert_allclose(weights["stft.forward_basis_buffer"][0, 0], WINDOW, atol=1e-7)


def test_the_shipped_graph_is_what_the_derivation_script_makes_of_silero_s(tmp_path):
    """engine/data's graph (sha256-checked at load) is reproducible from the package's own graph by
    scripts/derive-vad-graph.py, so what ships is Silero's weights rearranged and nothing else."""
    import hashlib
    import subprocess
    import sys

    from emolive.engine.vad import GRAPH_SHA256

    out = tmp_path / "derived.onnx"
    script = Path(__file__).resolve().parent.parent / "scripts" / "derive-vad-graph.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, capture_output=True)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == GRAPH_SHA256
