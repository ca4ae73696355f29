"""The runner: windows on a fixed hop grid, estimates equal to the offline model, bounded lag live."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import corpus_files, read_audio
from emolive.engine.features import FrontEnd, FrontEndConfig, compute
from emolive.engine.features.normalise import as_one_stream
from emolive.engine.plugin import load_model
from emolive.engine.runner import SPEECH_MIN_FRACTION, Runner
from emolive.engine.schema import validate_estimate, validate_status
from emolive.engine.sinks import JsonLinesSink
from emolive.engine.sinks.base import Sink, SinkError
from emolive.engine.sources import FileSource, RawPcmSource
from emolive.engine.vad import SpeechDetector
from emolive.engine.windows import Arrival, SlidingWindows, WindowError, WindowSpec

CFG = FrontEndConfig()
ARRIVAL = Arrival(0.0, 0.0, 0)


class Collect(Sink):
    """Keeps what the runner sends, as a GUI or test would."""

    def __init__(self) -> None:
        self.estimates: list[dict] = []
        self.turns: list[dict] = []
        self.statuses: list[dict] = []

    def emit(self, estimate):
        self.estimates.append(dict(estimate))

    def turn(self, turn):
        self.turns.append(dict(turn))

    def status(self, status):
        self.statuses.append(dict(status))

    def close(self):
        pass


class SlowModel:
    """The real student, made slower than real time by sleeping before every call."""

    def __init__(self, model, seconds: float) -> None:
        self.model, self.seconds = model, seconds
        self.name, self.meta, self.device = model.name, model.meta, model.device

    def predict(self, features, samples):
        return self.predict_batch([features], [samples])[0]

    def predict_batch(self, features, samples):
        time.sleep(self.seconds)
        return self.model.predict_batch(features, samples)

    def size_bytes(self):
        return self.model.size_bytes()


@pytest.fixture(scope="module")
def student():
    torch.set_num_threads(1)
    return load_model("student")


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory, speech) -> tuple[Path, np.ndarray]:
    """The shared speech fixture as a 16-bit FLAC, and the samples a reader gets back from it."""
    path = tmp_path_factory.mktemp("audio") / "speech.flac"
    sf.write(path, speech, 16000, subtype="PCM_16")
    return path, read_audio(path)


def offline(model, samples: np.ndarray, first: int, length: int):
    """What the model says about frames [first, first + length) of the whole signal, computed offline."""
    frames = as_one_stream(compute(samples), model.meta.stream_normalisation)[first:first + length]
    start = first * CFG.frame_shift
    return model.predict(frames, samples[start:start + (length - 1) * CFG.frame_shift + CFG.frame_length]), frames


def test_window_and_hop_seconds_become_frames():
    assert WindowSpec.from_seconds(3.0, 0.5, CFG) == WindowSpec(150, 25)
    assert WindowSpec.from_seconds(1.0, 0.1, CFG) == WindowSpec(50, 5)
    for window, hop in [(3.0, 0.25), (3.0, 0.0), (0.01, 0.5), (-1.0, 0.5), (float("nan"), 0.5)]:
        with pytest.raises(WindowError, match="multiple of the 20 ms frame shift"):
            WindowSpec.from_seconds(window, hop, CFG)


def test_windows_sit_on_the_hop_grid_whatever_the_chunking(speech):
    samples = speech[:16000 * 6]
    frames = compute(samples)
    rng = np.random.default_rng(0)
    frontend, windows = FrontEnd(), SlidingWindows(WindowSpec(150, 25), CFG)
    out, pos = [], 0
    while pos < len(samples):
        block = samples[pos:pos + rng.integers(1, 4000)]
        pos += len(block)
        windows.add(frontend.push(block), block, ARRIVAL)
        got, skipped = windows.take()
        assert skipped == 0 and windows.ready == 0
        out += got
        assert windows.buffer.held_samples < 150 * 320 + 4000 + 4000  # old frames and samples are dropped
    windows.add(frontend.flush(), samples[:0], ARRIVAL)
    out += windows.take()[0]
    assert [w.index for w in out] == list(range((len(frames) - 150) // 25 + 1))
    for w in out:
        np.testing.assert_array_equal(w.features, frames[25 * w.index:25 * w.index + 150])
        assert (w.start_sample, w.end_sample) == (8000 * w.index, 8000 * w.index + 149 * 320 + 400)
        np.testing.assert_array_equal(w.samples, samples[w.start_sample:w.end_sample])
    assert windows.finish(ARRIVAL) is None  # a stream that had full windows gets no extra one


def test_newest_only_skips_and_counts_the_windows_of_older_blocks():
    """Live, a backlog of blocks keeps only the windows the newest block completed; those are all
    kept, however many (a hop shorter than a block: with one window per block, a 20 ms hop lost 4 of
    every 5 estimates of a stream that kept up)."""
    windows = SlidingWindows(WindowSpec(10, 2), CFG)
    newer = Arrival(ARRIVAL.monotonic + 0.1, ARRIVAL.wall + 0.1, ARRIVAL.samples + 4 * 320)
    windows.add(np.zeros((13, CFG.num_features), np.float32), np.zeros(13 * 320 + 80, np.float32), ARRIVAL)
    windows.add(np.zeros((4, CFG.num_features), np.float32), np.zeros(4 * 320, np.float32), newer)
    got, skipped = windows.take(newest_only=True)
    assert [w.index for w in got] == [2, 3] and skipped == 2 and windows.taken == 4
    windows.add(np.zeros((4, CFG.num_features), np.float32), np.zeros(4 * 320, np.float32), newer)
    got, skipped = windows.take(newest_only=True)  # one block, keeping up: every window it completed
    assert [w.index for w in got] == [4, 5] and skipped == 0


class Listening(SlowModel):
    """The student without a pause, keeping the length of every sample span it is handed; `reads`:
    what it says of itself (None: nothing, as a third party's plugin)."""

    def __init__(self, model, reads: bool | None) -> None:
        super().__init__(model, 0.0)
        self.heard: list[int] = []
        if reads is not None:
            self.reads_samples = reads

    def predict_batch(self, features, samples):
        self.heard += [len(s) for s in samples]
        return self.model.predict_batch(features, samples)


def test_a_model_of_features_alone_is_handed_no_samples_and_estimates_the_same(student, speech_file):
    """Windows, turns and the whole-recording pass hand the model no samples where it reads none (no
    buffer keeps them), and each span's samples where it does or says nothing."""
    path, samples = speech_file
    runs = {reads: Listening(student, reads) for reads in (False, None)}
    sinks = {reads: Collect() for reads in runs}
    for reads, model in runs.items():
        with FileSource(path) as source:
            Runner(source, model, [sinks[reads]], whole_stream=True).run()
    assert set(runs[False].heard) == {0}
    assert len(runs[None].heard) == len(runs[False].heard) and min(runs[None].heard) > 0
    assert max(runs[None].heard) == (len(compute(samples)) - 1) * 320 + 400  # every frame's samples: the whole pass
    for kind in ("estimates", "turns"):
        said = {reads: [[item[k] for k in ("start", "end", "activation", "valence", "dominance")]
                        for item in getattr(sinks[reads], kind)] for reads in runs}
        assert said[False] == said[None] != []  # the same features in the same batches: the same numbers


def test_runner_estimates_equal_the_offline_model_on_the_same_windows(student, speech_file):
    path, samples = speech_file
    sink = Collect()
    with FileSource(path) as source:
        stats = Runner(source, student, [sink]).run()
    frames = compute(samples)
    assert stats.estimates == len(sink.estimates) == (len(frames) - 150) // 25 + 1 > 10
    assert stats.skipped_windows == 0 and stats.audio_s == len(samples) / 16000
    detector = SpeechDetector(CFG)
    flags = np.concatenate([detector.push(samples), detector.flush()])  # streaming = offline (test_vad)
    for seq, estimate in enumerate(sink.estimates):
        validate_estimate(estimate)
        prediction, window = offline(student, samples, 25 * seq, 150)
        assert estimate["seq"] == seq and estimate["start"] == seq * 0.5
        assert estimate["end"] == pytest.approx(seq * 0.5 + 3.005)
        got = [estimate[k] for k in ("activation", "valence", "dominance")]
        # the runner batches up to 64 windows per call, offline runs one: same weights and features, only
        # the BLAS summation order for the batch shape differs (~sqrt(K) ulp, K <= 256, order-1 values)
        np.testing.assert_allclose(got, prediction.avd, atol=1e-5)
        np.testing.assert_allclose(list(estimate["classes"].values()), prediction.class_probs, atol=1e-5)
        assert list(estimate["classes"]) == list(student.meta.class_names)
        voiced = float(np.mean(window[:, 42] > 0.5))
        speech = np.mean(flags[25 * seq:25 * seq + 150]) >= SPEECH_MIN_FRACTION
        assert estimate["voiced_ratio"] == voiced and estimate["speech"] == speech
        assert estimate["wall_end"] - estimate["wall_start"] == pytest.approx(3.005)
    validate_status(sink.statuses[-1])
    assert sink.statuses[-1]["estimates"] == stats.estimates


class HesitantFileSource(FileSource):
    """The real file source, its reader pausing before each block, so the runner seldom has a backlog."""

    def blocks(self):
        for block in super().blocks():
            time.sleep(0.01)
            yield block


def test_offline_output_does_not_depend_on_the_reader_threads_timing(student, tmp_path):
    """One file, read in 1 s blocks as fast as it goes (the runner drains backlogs of many blocks)
    and in 0.3125 s blocks one at a time: the same estimates and turns bit for bit. Batches counted
    from the first window give that; batches of whatever was queued did not (a batch of one window
    rounds ~1e-6 apart from larger ones in onnxruntime's GEMM)."""
    path = tmp_path / "long.flac"
    sf.write(path, np.concatenate([read_audio(p) for p in corpus_files("ravdess", every=120)][:16]), 16000)
    runs = []
    for source_type, block_size in ((FileSource, 16000), (HesitantFileSource, 5000)):
        sink = Collect()
        with source_type(path, block_size=block_size) as source:
            Runner(source, student, [sink]).run()
        runs.append(sink)
    drop = ("latency_ms", "wall_start", "wall_end")
    fast, hesitant = ([{k: v for k, v in e.items() if k not in drop} for e in run.estimates + run.turns]
                      for run in runs)
    assert len(runs[0].estimates) > 2 * 16 and len(runs[0].turns) > 2  # several batches and turns
    assert fast == hesitant


def test_a_pipe_gets_its_estimates_without_waiting_for_a_batch_to_fill(student, speech_file):
    """A producer on a pipe (as `arecord | emolive stream --source -`) writes 5 s of speech and waits:
    the windows of that audio are estimated while it waits, not once 16 windows' audio has come."""
    _, samples = speech_file
    read_fd, write_fd = os.pipe()
    first = threading.Event()

    class Notify(Collect):
        def emit(self, estimate):
            super().emit(estimate)
            first.set()

    def produce() -> None:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(samples[:16000 * 5].astype("<f4").tobytes())
            pipe.flush()
            waited.append(first.wait(timeout=20))  # a batch of 16 would need 10.5 s of audio
            pipe.write(samples[16000 * 5:].astype("<f4").tobytes())

    waited: list[bool] = []
    producer = threading.Thread(target=produce)
    producer.start()
    sink = Notify()
    with os.fdopen(read_fd, "rb") as pipe:
        Runner(RawPcmSource(pipe), student, [sink]).run()
    producer.join()
    assert waited == [True] and len(sink.estimates) == (len(compute(samples)) - 150) // 25 + 1


def test_the_stats_a_stopped_run_returns_are_its_final_status(student, speech_file):
    """The reader queues blocks until it sees the stop, so the summary printed from the stats after
    the run said more audio than the final status had (9.58 s against 9.48 s on a microphone)."""
    _, samples = speech_file
    read_fd, write_fd = os.pipe()
    done = threading.Event()

    def produce() -> None:  # a producer faster than the run, until the pipe is closed on it
        with os.fdopen(write_fd, "wb", buffering=0) as pipe:  # unbuffered: closing flushes nothing into it
            while not done.is_set():
                try:
                    pipe.write(samples[:16000].astype("<f4").tobytes())
                except BrokenPipeError:
                    return

    class StopAfterTwo(Collect):
        def emit(self, estimate):
            super().emit(estimate)
            if len(self.estimates) == 2:
                runner.stop()

    producer = threading.Thread(target=produce)
    producer.start()
    sink = StopAfterTwo()
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            runner = Runner(RawPcmSource(pipe), student, [sink], live=True)
            stats = runner.run()
            time.sleep(0.5)  # the reader may still be queueing: the stats stay what was sent
            assert runner.stats == stats
    finally:
        done.set()
        producer.join(timeout=10)
    final = sink.statuses[-1]
    assert (stats.estimates, stats.audio_s, stats.skipped_windows) == (final["estimates"], final["audio_s"],
                                                                       final["skipped_windows"])


def test_a_file_run_stopped_early_analyses_all_it_had_read_and_counts_only_that(student, tmp_path, speech):
    """Stopped (SIGTERM) 2.5 s into a 600 s file: "836 estimates from 486.00 s of audio", the last
    window ending at 420.5 s: the reader's queued minute was dropped unanalysed, and counted."""
    path = tmp_path / "long.flac"
    sf.write(path, np.tile(speech, -(-16000 * 120 // len(speech)))[:16000 * 120], 16000, subtype="PCM_16")

    class StopAtOnce(Collect):
        def emit(self, estimate):
            super().emit(estimate)
            if len(self.estimates) == 1:
                time.sleep(0.3)  # the reader fills its read-ahead meanwhile
                runner.stop()

    sink = StopAtOnce()
    runner = Runner(FileSource(path), student, [sink], live=False)
    stats = runner.run()
    assert 3.0 < stats.audio_s < 120.0  # stopped part way, after a read-ahead of more than one window
    # every window the analysed audio completes went out: the last ends within a hop (and the 131 ms of the
    # front end's look-ahead, at most) of the audio's end
    assert stats.audio_s - 0.5 - 0.14 <= sink.estimates[-1]["end"] <= stats.audio_s
    assert stats.estimates == len(sink.estimates) and sink.statuses[-1]["audio_s"] == stats.audio_s
    # lag is the audio after the last window of what arrived, and what arrived is what was analysed: the block
    # the reader held when the stop came, refused by the queue, had been counted in it (sample counts: exact)
    assert sink.statuses[-1]["lag_s"] == pytest.approx(stats.audio_s - sink.estimates[-1]["end"], abs=1e-6)


def test_a_backlog_of_many_batches_still_sends_its_status_on_the_beat(student, speech_file):
    """A file run at a 20 ms hop evaluated the whole backlog before looking at the clock: 3 s of
    estimates went out with one status, the final one. With a beat of 0 a status follows every batch."""
    path, _ = speech_file
    sink = Collect()
    runner = Runner(FileSource(path), student, [sink], live=False, hop_s=0.02, status_interval_s=0.0)
    runner.run()
    batches = -(-len(sink.estimates) // runner.batch_size)
    assert len(sink.estimates) > 4 * runner.batch_size and len(sink.statuses) >= batches


def test_offline_estimates_and_turns_leave_in_time_order(student, speech_file):
    """A turn goes out after every estimate whose window ends within it, and before any that ends later."""
    path, _ = speech_file
    order: list[tuple[str, dict]] = []

    class Ordered(Collect):
        def emit(self, estimate):
            order.append(("estimate", dict(estimate)))

        def turn(self, turn):
            order.append(("turn", dict(turn)))

    with FileSource(path, block_size=16000) as source:
        Runner(source, student, [Ordered()], batch_size=64).run()
    turns = [i for i, (kind, _) in enumerate(order) if kind == "turn"]
    assert turns
    for i in turns:
        end = order[i][1]["end"]
        assert all(e["end"] <= end for kind, e in order[:i] if kind == "estimate")  # both: samples / 16000
        assert all(e["end"] > end for kind, e in order[i:] if kind == "estimate")


def test_estimate_wall_clocks_never_go_back_when_a_file_is_read_fast(student, speech_file):
    """A file's 1 s blocks arrive ms apart, so each block's first windows read as up to 1 s before the
    previous block's last (wall_start went back 0.5 s at each block): LSL outlets, stamped from
    wall_end, went back in time. Each wall_end is at or after the one before, and the spans keep
    their length."""
    path, _ = speech_file
    sink = Collect()
    with FileSource(path, block_size=16000) as source:
        Runner(source, student, [sink], batch_size=64).run()
    ends = [e["wall_end"] for e in sink.estimates]
    assert len(ends) > 20 and ends == sorted(ends)
    assert all(abs((e["wall_end"] - e["wall_start"]) - (e["end"] - e["start"])) < 1e-6 for e in sink.estimates)


def test_a_stream_shorter_than_a_window_gets_one_estimate_over_all_of_it(student):
    path = corpus_files("emodb", limit=1)[0]  # 2 s
    samples, sink = read_audio(path), Collect()
    with FileSource(path) as source:
        Runner(source, student, [sink]).run()
    frames = len(compute(samples))
    [estimate] = sink.estimates
    assert estimate["start"] == 0.0 and estimate["end"] == ((frames - 1) * 320 + 400) / 16000
    prediction, _ = offline(student, samples, 0, frames)
    np.testing.assert_allclose([estimate["activation"], estimate["valence"], estimate["dominance"]],
                               prediction.avd, atol=1e-5)


def test_a_recording_shorter_than_a_window_is_one_model_pass_for_its_window_and_its_whole(student, monkeypatch):
    """Its one window spans exactly the whole recording, evaluated alone: the whole-recording turn
    takes that prediction instead of a second pass over the same frames, bit for bit the same."""
    path = corpus_files("emodb", limit=1)[0]  # 2 s
    calls: list[int] = []
    predict = student.predict_batch
    monkeypatch.setattr(student, "predict_batch", lambda features, samples: calls.append(len(features)) or
                        predict(features, samples))
    sink = Collect()
    with FileSource(path) as source:
        Runner(source, student, [sink], whole_stream=True).run()
    [estimate], [whole] = sink.estimates, [turn for turn in sink.turns if turn["kind"] == "stream"]
    assert calls == [1] * len(sink.turns)  # one call per speech turn, and one for the window and the whole
    same = ("start", "end", "activation", "valence", "dominance", "classes", "voiced_ratio")  # the voiced share was
    assert [whole[k] for k in same] == [estimate[k] for k in same]  # rounded to float32 for the whole only


def test_silence_is_estimated_and_flagged_not_hidden(student, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(16000 * 4, np.float32), 16000)
    sink = Collect()
    with FileSource(path) as source:
        Runner(source, student, [sink]).run()
    assert len(sink.estimates) == 2  # 199 frames: windows at 0 and 0.5 s
    assert all(not e["speech"] and e["voiced_ratio"] == 0.0 for e in sink.estimates)


def test_a_model_slower_than_real_time_skips_windows_and_lag_stays_bounded(student, speech_file):
    """A real-time paced file and a model taking 0.45 s per window against a 0.2 s hop: most windows
    are skipped and counted. Bounds: a window waits at most for the model call under way, a speech
    turn's call that ended in the same blocks, and its own (latency < 3 calls); an estimate trails the
    newest audio by at most a hop, a 0.1 s block, the front end's look-ahead and two calls (lag)."""
    path, samples = speech_file
    seconds, sleep = 5.0, 0.45
    short = path.parent / "five_seconds.wav"
    sf.write(short, samples[:int(16000 * seconds)], 16000, subtype="FLOAT")
    sink = Collect()
    with FileSource(short, realtime=True) as source:
        runner = Runner(source, SlowModel(student, sleep), [sink], window_s=1.0, hop_s=0.2, live=True,
                        status_interval_s=0.5)
        stats = runner.run()
    windows = (len(compute(samples[:int(16000 * seconds)])) - 50) // 10 + 1
    assert stats.estimates + stats.skipped_windows == windows
    assert stats.skipped_windows >= windows // 2 and stats.estimates >= 5
    starts = [e["start"] for e in sink.estimates]
    assert starts == sorted(starts) and [e["seq"] for e in sink.estimates] == list(range(stats.estimates))
    lookahead = FrontEnd().lookahead_ms / 1000
    for estimate in sink.estimates:
        assert estimate["latency_ms"] < 1000 * (3 * sleep + 0.15)
    for status in sink.statuses:
        validate_status(status)
        # lag = the block being read (0.1 s) + look-ahead + a window's and a turn's model call (sleep each)
        # + 0.2 s of audio the model's own sleep lets pile up; 0.15 s of slack for a busy machine's scheduling
        assert status["lag_s"] < 0.2 + 0.1 + lookahead + 2 * sleep + 0.15
    assert sink.statuses[-1]["skipped_windows"] == stats.skipped_windows
    assert len(sink.statuses) >= seconds / (0.5 + sleep) - 1  # every interval, or after each call if slower
    assert [status["ended"] for status in sink.statuses] == [False] * (len(sink.statuses) - 1) + [True]
    assert sink.statuses[-1]["end_reason"] == "finished" and "error" not in sink.statuses[-1]
    assert all("end_reason" not in status for status in sink.statuses[:-1])


def test_stop_from_another_thread_ends_a_live_run_promptly(student, speech_file):
    path, _ = speech_file
    sink = Collect()
    with FileSource(path, realtime=True) as source:
        runner = Runner(source, student, [sink], window_s=1.0, hop_s=0.5, live=True)
        threading.Timer(1.8, runner.stop).start()
        t0 = time.monotonic()
        stats = runner.run()
    assert time.monotonic() - t0 < 2.8
    assert stats.estimates == len(sink.estimates) >= 1 and stats.audio_s < 3.0
    assert sink.statuses[-1]["end_reason"] == "stopped"  # not "finished": the recording went on


def test_when_a_sink_fails_the_others_still_get_the_final_status(student, speech_file):
    """A JSON lines reader that went away (`--json | head`) ended the run with no final status for the
    other outputs: a ZeroMQ subscriber's last status said fewer estimates than it had received."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the reader is gone before the first estimate
    other = Collect()
    with os.fdopen(write_fd, "w") as pipe, FileSource(speech_file[0]) as source:
        runner = Runner(source, student, [other, JsonLinesSink(pipe)])
        with pytest.raises(SinkError, match="closed its end of the pipe"):
            runner.run()
    assert len(other.estimates) == 1  # delivered before the JSON lines failed on the same estimate
    assert other.statuses and other.statuses[-1]["estimates"] == 1 and other.statuses[-1]["ended"] is True
    # the others hear that the run failed, and why: their estimates are not the whole file's
    assert other.statuses[-1]["end_reason"] == "failed" and "closed its end of the pipe" in other.statuses[-1]["error"]


def test_a_run_stopped_mid_utterance_still_sends_its_turn(student):
    """Ctrl-C (or the GUI's Stop) while someone spoke: the estimates went out, the turn in progress
    never did, so the last utterance had no turn at all. A stop now ends the stream where it was read."""
    speech = np.concatenate([read_audio(p) for p in corpus_files("emodb", every=40, limit=3)])
    cut = int(0.8 * len(speech))  # mid-utterance: EmoDB clips are speech from end to end
    read_fd, write_fd = os.pipe()
    heard, returned = threading.Event(), threading.Event()

    class StopWhenHeard(Collect):
        def emit(self, estimate):
            super().emit(estimate)
            if estimate["end"] >= cut / 16000 - 0.5:  # the audio written is estimated: stop, as Ctrl-C would
                heard.set()

    def produce() -> None:  # writes the first 80 % and goes on waiting, as a microphone would
        pipe = os.fdopen(write_fd, "wb")
        pipe.write(speech[:cut].astype("<f4").tobytes())
        pipe.flush()
        heard.wait(timeout=60)
        runner.stop()
        returned.wait(timeout=60)  # the pipe stays open: the run ends by the stop, never by the end of its input
        pipe.close()

    sink = StopWhenHeard()
    with os.fdopen(read_fd, "rb") as pipe:
        runner = Runner(RawPcmSource(pipe), student, [sink], window_s=1.0, hop_s=0.5, live=True)
        producer = threading.Thread(target=produce)
        producer.start()
        try:
            runner.run()
        finally:
            returned.set()
    producer.join()
    assert heard.is_set() and sink.turns, "no turn for the speech in progress"
    assert sink.turns[-1]["end"] > cut / 16000 - 1.0 and sink.statuses[-1]["ended"] is True
    assert sink.statuses[-1]["end_reason"] == "stopped"


def test_a_ctrl_c_as_the_reader_starts_still_joins_it_before_the_run_ends(student, speech_file, monkeypatch):
    """Thread.start() waits for the new thread to run; a Ctrl-C raised from that wait had left the reader
    unjoined, still in libsndfile when the caller closed the file: `score` ended in a segfault (-11)."""
    path, _ = speech_file
    started: list[threading.Thread] = []

    class InterruptedAsItStarts(threading.Thread):
        def start(self) -> None:
            super().start()
            started.append(self)
            raise KeyboardInterrupt

    monkeypatch.setattr("emolive.engine.runner.threading.Thread", InterruptedAsItStarts)
    sink = Collect()
    with FileSource(path) as source, pytest.raises(KeyboardInterrupt):
        Runner(source, student, [sink], live=False).run()
    assert started and not started[0].is_alive()
    assert sink.statuses[-1]["end_reason"] == "stopped"
