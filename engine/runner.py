"""The live path: audio source -> streaming front end -> sliding windows -> model plugin -> sinks.

Two threads, so the source never waits on the model: a reader thread stamps each block as it
arrives and queues it; `run()` (on the caller's thread, e.g. a GUI worker) drains everything
queued, pushes it through the front end, and evaluates the windows that became complete.

Window policy (see engine.windows for the grid):
- A window is evaluated once all its frames exist. The front end returns a frame only after its
  look-ahead (`FrontEnd.lookahead_ms`) of later audio has arrived, so the first estimate comes
  after window + look-ahead seconds of audio, and each next one a hop later.
- Live sources (`live=True`: microphone, paced files): when windows of more than one block are
  ready, only those of the newest block are evaluated and the others are counted as skipped, so a
  model slower than real time costs estimates, never an ever-growing lag. Offline (`live=False`):
  every window is evaluated as fast as the machine allows. A recording at hand (a file, an array:
  `at_hand`) is evaluated in batches of `batch_size` counted from its first window: their bounds
  depend on nothing but the audio (not on block sizes, nor on how far the reader thread got),
  because onnxruntime's GEMM rounds an estimate differently by batch (~1e-6) and a recording must
  give the same output on every run. A pipe (stdin, GStreamer) may be a live producer: full batches
  go out as they fill, and the rest whenever nothing more is queued, so its estimates never wait for
  audio that has not been made. A speech turn is held until the estimates of the windows that end
  within it have gone out, so estimates and turns leave in time order.
- End of stream: the front end is flushed and the windows it completes are evaluated (by the same
  rule: live keeps the newest block's); a stream shorter than one window gets one estimate over all its
  frames. The fewer than hop frames after the last full window are not evaluated again.

Every estimate is sent, even on silence: `speech` is False when fewer than SPEECH_MIN_FRACTION of
the window's frames are speech by the voice activity detector (engine.vad: tones, music and noise
are not speech). Speech turns (engine.turns) get one estimate each over their whole span when
they end, sent to the sinks' `turn` alongside the windows. A status goes to the sinks about once a second and at the end,
also when the source fails or Ctrl-C stops the run (only a failing sink gets none).

Clocks: start/end count samples from the stream's start. wall_start/wall_end take the arrival of
the block that completed the window as the capture time of that block's last sample, which is
what it is for a live source; for a file read faster than real time they say when it was read.
An estimate's wall_end is never before the previous estimate's: a file's 1 s blocks arrive ms apart,
so a window in the next block read as up to 1 s earlier, and LSL outlets (stamped from wall_end)
went back in time; a live block that arrives late would do the same.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_WINDOW_S
from emolive.engine.features import FrontEnd
from emolive.engine.plugin import ModelPlugin, Prediction, check_sample_rate, predict_checked, reads_samples
from emolive.engine.features.normalise import StreamNormaliser
from emolive.engine.narrowband import narrowband_note
from emolive.engine.schema import (END_FAILED, END_FINISHED, END_STOPPED, SCALE, check_stream_id, end_fields,
                                   estimate_payload, status_payload, turn_payload)
from emolive.engine.sinks.base import Sink, SinkError
from emolive.engine.sources.base import SAMPLE_RATE, AudioSource, AudioSourceError
from emolive.engine.turns import TurnOptions, TurnTracker
from emolive.engine.vad import CHUNK, SpeechDetector, SpeechFlags
from emolive.engine.whole import WholeRecording
from emolive.engine.windows import (Arrival, FrameBuffer, SlidingWindows, Window, WindowSpec, covered_end,
                                    voiced_share)

log = logging.getLogger(__name__)

NO_FRAME = "shorter than one 25 ms frame"  # why a readable recording has no estimate at all
SPEECH_MIN_FRACTION = 0.1  # 0.3 s of speech (engine.vad) in a 3 s window
STATUS_INTERVAL_S = 1.0
OFFLINE_BLOCK_SIZE = 16000  # 1 s reads when nobody waits for each block: ~1.4x less CPU than 0.1 s reads
OFFLINE_QUEUE_BLOCKS = 64  # read-ahead for files: enough to fill a batch, bounded so memory is too
# windows per model call offline: ~0.7 ms a window against ~1.3 ms one by one (one core); 16 is as fast as
# 64 but onnxruntime's arena holds 9 MB for it, not 42 MB (measured 2026-12-05)
BATCH_SIZE = 16
POLL_S = 0.1  # how often a waiting run() looks at stop()
_END = object()  # queued by the reader when the source has ended


@dataclass(frozen=True)
class RunStats:
    """What a finished run did."""

    estimates: int
    skipped_windows: int
    dropped_blocks: int
    audio_s: float
    device_gaps: int = 0  # times a live device was lost and came back
    gap_s: float = 0.0  # how long those gaps lasted


NOT_STARTED = RunStats(0, 0, 0, 0.0)  # a run stopped before its first block (in --wait-subscriber's wait)


def run_status(stream_id: str, stats: RunStats, *, lag_s: float, live: bool, ended: str = "",
               error: str = "") -> dict[str, Any]:
    """A run's status: the schema's fields, its counts so far and its mode (the runner's extras), and for
    its final status how it `ended` (END_REASONS) and the `error` of a failed one."""
    return status_payload(stream=stream_id, dropped_blocks=stats.dropped_blocks, skipped_windows=stats.skipped_windows,
                          lag_s=lag_s, wall=time.time(), estimates=stats.estimates, audio_s=stats.audio_s, live=live,
                          device_gaps=stats.device_gaps, gap_s=stats.gap_s, ended=bool(ended),
                          **end_fields(ended, error))


class Runner:
    """Runs one source through one model into sinks; `run()` once, `stop()` from any thread."""

    def __init__(self, source: AudioSource, model: ModelPlugin, sinks: Sequence[Sink], *,
                 window_s: float = DEFAULT_WINDOW_S, hop_s: float = DEFAULT_HOP_S, live: bool = False,
                 stream_id: str = "default", status_interval_s: float = STATUS_INTERVAL_S, batch_size: int = BATCH_SIZE,
                 whole_stream: bool = False, turns: TurnOptions = TurnOptions(), warn_narrowband: bool = True) -> None:
        """`whole_stream`: also send one turn of kind "stream" over the whole stream at its end (batch
        scoring and the Python API ask for it): one model pass up to 5 minutes, a length-weighted mean
        of 5-minute passes beyond, in bounded memory (engine.whole). `warn_narrowband=False`: a
        batch warns once for all its files (engine.batch), not once per file."""
        check_sample_rate(model)
        self.cfg = model.meta.frontend
        self.source, self.model, self.sinks = source, model, list(sinks)
        self._warn_narrowband = warn_narrowband
        self.live, self.stream_id = live, check_stream_id(stream_id)
        self.status_interval_s, self.batch_size = status_interval_s, batch_size
        self.spec = WindowSpec.from_seconds(window_s, hop_s, self.cfg)
        self._frontend = FrontEnd(self.cfg)
        samples = reads_samples(model)  # a model of features alone: no buffer keeps samples for it
        self._windows = SlidingWindows(self.spec, self.cfg, samples)
        self._whole = WholeRecording(self.cfg, self._predict_whole, samples) if whole_stream else None
        # the span (first and last sample) and prediction of the latest window evaluated in a batch of its own
        self._alone: tuple[int, int, Prediction] | None = None
        self._turns_sent = 0
        self._make_turns = any(sink.takes_turns() for sink in self.sinks)  # else a turn is only counted
        self._vad, self._speech = SpeechDetector(self.cfg), SpeechFlags()
        self._turns = TurnTracker(turns, self.cfg.frame_shift / self.cfg.sample_rate)
        self._turn_frames = FrameBuffer(self.cfg, samples)  # the open turn's frames (and those of turns not yet sent)
        norm = model.meta.stream_normalisation
        self._normaliser = StreamNormaliser(norm) if norm is not None else None
        self._queue: queue.Queue[Any] = queue.Queue(0 if live else OFFLINE_QUEUE_BLOCKS)
        self._stop = threading.Event()
        self._received = 0  # samples the reader has queued; written by the reader thread only
        self._accepted = 0  # samples the front end has taken: the audio the run's counts speak of
        self._next_status: float | None = None  # when the next status is due, once processing runs
        self._seq = 0
        self._skipped = 0
        self._pending: list[tuple[Window, bool]] = []  # windows taken, not yet evaluated, and their speech flag
        self._held: list[tuple[Window, Prediction, float]] = []  # offline: turns made, waiting for earlier estimates
        self._lag_s = 0.0
        self._wall_end = -math.inf  # the latest estimate's wall_end
        self._final: RunStats | None = None  # what the final status said, once sent
        self._reader: threading.Thread | None = None  # run()'s reader thread, from its start until it is let go
        self._source_ended = False  # the source ran out (else the run was stopped or failed)

    def stop(self) -> None:
        """Ask `run()` to return soon (within POLL_S plus one model call); safe from any thread."""
        self._stop.set()

    def run(self) -> RunStats:
        """Process until the source ends or `stop()`; source errors are raised here, on the caller's thread."""
        if self.live:  # offline nobody waits on the first estimate, and batch scoring would pay it per file
            self._warm_up()
        self._reader = threading.Thread(target=self._read, name="emolive-reader", daemon=True)
        try:
            # start() inside: it waits for the thread to run, and a Ctrl-C raised from that wait left a
            # reader unjoined, in libsndfile as the caller closed the file (score's exit -11)
            self._reader.start()
            self._process()
        except SinkError as exc:  # the sink that failed can take nothing more; the others still hear how the run ended
            self._final = self._send_status(ended=END_FAILED, after_sink_failure=True, error=str(exc))
            raise
        except Exception as exc:  # the source failed: the sinks hear it, so a partial run never passes for a whole one
            self._final = self._send_status(ended=END_FAILED, error=str(exc))
            raise
        except BaseException:  # Ctrl-C (SIGTERM is one too)
            self._final = self._send_status(ended=END_STOPPED)
            raise
        else:
            self._final = self._send_status(ended=END_FINISHED if self._source_ended else END_STOPPED)
        finally:
            self._let_reader_go()
        return self.stats

    def _let_reader_go(self) -> None:
        """Stop the reader and wait for it, once, up to a second (one blocked on stdin stays behind as a
        daemon), a Ctrl-C then kept for after: cut short, the source was closed under a read still in
        libsndfile, and the process ended in a segmentation fault (exit 139) instead of 130."""
        self._stop.set()
        self.source.stop_reading()
        interrupted = None
        reader, deadline = self._reader, time.monotonic() + 1.0
        while reader is not None and reader.is_alive() and time.monotonic() < deadline:
            try:
                reader.join(timeout=max(0.0, deadline - time.monotonic()))
            except KeyboardInterrupt as exc:
                interrupted = exc
        self._reader = None  # waited for: a later call (run()'s finally after the stopped path) waits no more
        if interrupted is not None:
            raise interrupted

    @property
    def stats(self) -> RunStats:
        """What the run has done so far; once run() has returned or raised, what its final status said
        (the reader may queue a block or two more before it stops: the summary printed after the run
        said 9.58 s of audio where the final status had said 9.48 s)."""
        if self._final is not None:
            return self._final
        source = self.source.stats
        return RunStats(self._seq, self._skipped, source.dropped_blocks, self._accepted / SAMPLE_RATE,
                        source.gaps, source.gap_s)

    def _warm_up(self) -> None:
        """Load the front end's compiled kernels and run the model once before audio flows: the first
        calls cost up to ~0.7 s (numba's cache where the JIT serves, onnxruntime's or torch's first
        allocations), which must not land on the first estimate."""
        FrontEnd(self.cfg).push(np.zeros(self.cfg.sample_rate, np.float32))
        SpeechDetector(self.cfg).push(np.zeros(CHUNK, np.float32))
        predict_checked(self.model, [np.zeros((self.spec.window, self.cfg.num_features), np.float32)],
                        [np.zeros(covered_end(self.spec.window, self.cfg), np.float32)])

    def _read(self) -> None:
        """Reader thread: stamp and queue each block; its arrival is the capture time of its last sample.
        The narrowband warning comes with the first block: a pipeline knows its rate once it flows."""
        try:
            for block in self.source.blocks():
                if self._warn_narrowband and not self._received and \
                        (note := narrowband_note(self.source.description, self.source.input_rate, self.model)):
                    log.warning(note)
                arrival = Arrival(time.monotonic(), time.time(), self._received + len(block))
                self._received = arrival.samples  # before queueing, so lag is never computed short
                if not self._put((block, arrival)):
                    self._received -= len(block)  # refused once stopped: never analysed, so never arrived for lag
                    return
        except Exception as exc:  # handed to run(), which raises it where the caller can catch it
            self._put(exc)
        else:
            self._put(_END)

    def _put(self, item: Any) -> bool:
        """Queue `item`, waiting while an offline read-ahead is full; False once stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _process(self) -> None:
        self._next_status = time.monotonic() + self.status_interval_s
        while not self._stop.is_set():
            for item in self._drain():
                if isinstance(item, Exception):
                    # a damaged file or a lost device: what was read is still delivered (its windows,
                    # turns and whole-stream estimate), then the error
                    self._finish()
                    raise item
                if item is _END:
                    self._source_ended = True
                    self._finish()
                    self._check_a_frame()
                    return
                self._accept(*item)
            # the whole backlog at once (live: only its newest window); a recording at hand keeps a
            # partial batch for more audio, so batch bounds are the audio's, not the reader's timing
            self._take_windows()
            self._evaluate(whole_batches_only=self.source.at_hand and not self.live)
            self._status_beat()
        # stopped (Ctrl-C, stop()): the stream ends where it was read to, as at its end, so the windows already
        # complete go out, and the turn in progress with them (it was dropped: the last utterance had none).
        # What the reader had queued is read audio too: a file's read-ahead (up to a minute) was dropped,
        # while the summary and the final status counted it. The reader is let finish first: a block it was
        # putting as the stop came went in after this drain, counted as arrived (lag_s) and never analysed
        self._let_reader_go()
        for item in self._queued():
            if isinstance(item, tuple):
                self._accept(*item)
        self._finish()

    def _accept(self, block: np.ndarray, arrival: Arrival) -> None:
        """One block of the source into the detector and the front end."""
        self._decide_speech(self._vad.push(block))
        self._add(self._frontend.accept(block), block, arrival)  # the source checked it
        self._accepted += len(block)

    def _drain(self) -> list[Any]:
        """Everything queued now (waiting up to POLL_S for the first item): the backlog is seen at once."""
        try:
            first = self._queue.get(timeout=POLL_S)
        except queue.Empty:
            return []
        return [first, *self._queued()]

    def _queued(self) -> list[Any]:
        """Everything queued now, without waiting."""
        items = []
        for _ in range(self._queue.qsize()):
            items.append(self._queue.get_nowait())
        return items

    def _finish(self) -> None:
        """End of stream: flush the front end's look-ahead, evaluate what it completes, then a short stream."""
        arrival = Arrival(time.monotonic(), time.time(), self._received)
        self._decide_speech(self._vad.flush())  # before the frames: a turn waits for its frames, never the reverse
        self._turns.finish()
        self._add(self._frontend.flush(), np.zeros(0, np.float32), arrival)
        self._take_windows()
        short = self._windows.finish(arrival)
        if short:
            self._pending.append((short, self._is_speech(short)))
        self._evaluate()
        if self._whole is not None and self._whole.end_frame:
            speech = self._speech.speech_frames >= SPEECH_MIN_FRACTION * self._speech.frames
            self._send_turn("stream", *self._whole.finish(arrival), speech)

    def _check_a_frame(self) -> None:
        """A recording (a file, an array) that ended without one frame has no estimate at all: an
        error naming it, as an empty file is, not a silent empty result. A live stream cut short
        (stdin, a device) is not refused."""
        if self.source.at_hand and not self._windows.buffer.end_frame:
            raise AudioSourceError(f"{self.source.description}: {1000 * self._received / SAMPLE_RATE:.3g} ms of "
                                   f"audio is {NO_FRAME} of the front end: nothing to estimate")

    def _decide_speech(self, flags: np.ndarray) -> None:
        self._speech.add(flags)
        self._turns.add(flags)

    def _add(self, frames: np.ndarray, block: np.ndarray, arrival: Arrival) -> None:
        """New frames and their block go to every consumer of frames: the windows and the whole-stream store.

        A model trained with stream normalisation gets the frames through this stream's running
        normaliser first (engine.features.normalise): one per Runner, so its state is this stream's."""
        if self._normaliser is not None:
            frames = self._normaliser.push(frames)
        self._windows.add(frames, block, arrival)
        if self._whole is not None:
            self._whole.add(frames, block, arrival)
        self._turn_frames.add(frames, block)
        self._send_turns(arrival)

    def _send_turns(self, arrival: Arrival) -> None:
        """Turns whose frames all exist now, one model call each (where a sink takes them; else each is
        only counted, so the whole stream's turn has the same seq either way); then drop frames no turn
        can still need."""
        pending = self._turns.pending
        while pending and pending[0].end <= self._turn_frames.end_frame:
            span = pending.pop(0)
            if not self._make_turns:
                self._turns_sent += 1
                continue
            window = self._turn_frames.window(span.first, span.end - span.first, 0, arrival)
            turn = (window, self._predict_one(window), voiced_share(window.features, self.cfg))
            if self.live:  # at once: live evaluates the backlog's windows after it
                self._send_turn("turn", *turn, True)
            else:  # after the estimates of the windows that end within it
                self._take_windows()
                self._held.append(turn)
                self._release_turns()
        keep = pending[0].first if pending else self._turns.open_since
        self._turn_frames.drop_before(self._turns.decided if keep is None else keep)

    def _predict_one(self, span: Window) -> Prediction:
        """One model call over a whole span (a turn, or a piece of the whole recording)."""
        return predict_checked(self.model, [span.features], [span.samples])[0]

    def _predict_whole(self, span: Window) -> Prediction:
        """A piece of the whole recording: the prediction of a window over the same span, made alone
        (one call of one span, as here), where there is one, else one model call. A recording shorter
        than one window is one such window, so scoring a short clip costs one pass, not two."""
        if self._alone is not None and self._alone[:2] == (span.start_sample, span.end_sample):
            return self._alone[2]
        return self._predict_one(span)

    def _send_turn(self, kind: str, span: Window, prediction: Prediction, voiced: float, speech: bool) -> None:
        """A turn: the span's prediction and voiced share, sent to every sink."""
        turn = turn_payload(kind=kind, **self._fields(span, prediction, self._turns_sent, speech, voiced))
        self._turns_sent += 1
        for sink in self.sinks:
            sink.turn(turn)

    def _take_windows(self) -> None:
        """Move the complete windows (live: the newest) to the pending ones, with their speech flag.

        The flag is read now, before the flags are dropped: the VAD decides a frame within a chunk
        (32 ms) of its centre, well inside the front end's look-ahead (131 ms), so a complete
        window's flags are all decided and the flag does not depend on when it is read."""
        windows, skipped = self._windows.take(newest_only=self.live)
        self._skipped += skipped
        self._pending += [(window, self._is_speech(window)) for window in windows]
        self._speech.drop_before(self._windows.next_frame)

    def _is_speech(self, window: Window) -> bool:
        first = window.start_sample // self.cfg.frame_shift
        return self._speech.fraction(first, len(window.features)) >= SPEECH_MIN_FRACTION

    def _evaluate(self, whole_batches_only: bool = False) -> None:
        """Model calls over the pending windows, oldest first, batch_size at a time: all of them, or
        only whole batches (the rest waits for more). Held turns go out between the estimates."""
        count = len(self._pending)
        if whole_batches_only:
            count -= count % self.batch_size
        for i in range(0, count, self.batch_size):
            chunk = self._pending[i:i + self.batch_size]
            predictions = predict_checked(self.model, [w.features for w, _ in chunk], [w.samples for w, _ in chunk])
            alone = chunk[0][0] if len(chunk) == 1 else None
            self._alone = None if alone is None else (alone.start_sample, alone.end_sample, predictions[0])
            for (window, speech), prediction in zip(chunk, predictions):
                self._release_turns(before=window.end_sample)
                estimate = self._estimate(window, prediction, speech)
                for sink in self.sinks:
                    sink.emit(estimate)
            self._status_beat()
        del self._pending[:count]
        self._release_turns()

    def _status_beat(self) -> None:
        """A status once its time has come: on a fixed beat, never more than once per model call, and
        between the batches of a backlog too (a file run at a 20 ms hop sent none in 3 s of estimates)."""
        now = time.monotonic()
        if self._next_status is not None and now >= self._next_status:
            self._send_status()
            self._next_status = max(self._next_status + self.status_interval_s, now)

    def _release_turns(self, before: float | None = None) -> None:
        """Send the held turns that end before sample `before` (by default: before the oldest pending
        window's end, so every estimate ending within them has gone out; all of them when none pends)."""
        if before is None:
            before = self._pending[0][0].end_sample if self._pending else float("inf")
        while self._held and self._held[0][0].end_sample < before:
            self._send_turn("turn", *self._held.pop(0), True)

    def _estimate(self, window: Window, prediction: Prediction, speech: bool) -> dict[str, Any]:
        self._lag_s = (self._received - window.end_sample) / self.cfg.sample_rate
        estimate = estimate_payload(**self._fields(window, prediction, self._seq, speech,
                                                   voiced_share(window.features, self.cfg), self._wall_end))
        self._seq, self._wall_end = self._seq + 1, estimate["wall_end"]
        return estimate

    def _fields(self, window: Window, prediction: Prediction, seq: int, speech: bool,
                voiced_ratio: float, not_before: float = -math.inf) -> dict[str, Any]:
        """The payload fields of one model call over `window` (an estimate's, or a turn's); its
        wall_end no earlier than `not_before`."""
        rate = self.cfg.sample_rate
        wall_end = max(window.arrival.wall - (window.arrival.samples - window.end_sample) / rate, not_before)
        activation, valence, dominance = np.clip(prediction.avd, *SCALE)
        return dict(
            seq=seq, stream=self.stream_id, start=window.start_sample / rate, end=window.end_sample / rate,
            wall_start=wall_end - (window.end_sample - window.start_sample) / rate, wall_end=wall_end,
            activation=activation, valence=valence, dominance=dominance,
            classes=dict(zip(self.model.meta.class_names, prediction.class_probs)),
            speech=speech, voiced_ratio=voiced_ratio, model=self.model.name,
            latency_ms=1000.0 * (time.monotonic() - window.arrival.monotonic))

    def _send_status(self, ended: str = "", after_sink_failure: bool = False, error: str = "") -> RunStats:
        """Status: lag_s is how much newer audio had arrived when the latest estimate was made (0 before one).
        Returns the counts it sent.

        `ended`: the run's final status and how it ended (END_REASONS), so a subscriber can tell a finished
        stream from a quiet one (a live stream's silence sends no estimates for minutes; `gui --connect`
        waited on both alike), and a whole run from one that a damaged file or a failed output cut short
        (`error` says why): both had sent the same final status.

        `after_sink_failure`: the final status of a run a sink ended; a sink that fails again (the broken
        one: a closed pipe, a full disk) is passed over so the others still get it, and the run's error
        stays the first failure."""
        stats = self.stats
        status = run_status(self.stream_id, stats, lag_s=self._lag_s, live=self.live, ended=ended, error=error)
        log.debug("status: %d estimates from %.2f s of audio, lag %.3f s, %d windows skipped, %d blocks dropped%s",
                  stats.estimates, stats.audio_s, self._lag_s, stats.skipped_windows, stats.dropped_blocks,
                  " (the final one)" if ended else "")
        for sink in self.sinks:
            try:
                sink.status(status)
            except SinkError:
                if not after_sink_failure:
                    raise
        return stats
