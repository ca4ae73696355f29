"""The Python API: analyse recordings, arrays or whole folders in one call, or iterate over a live stream.

A facade over the engine: analyses come from engine.analysis (one input) and engine.batch (many,
as `emolive score`), streams from the engine's session. All go through the one live path
(`engine.runner.Runner`), so what a program gets here is exactly what `emolive stream` publishes:
the same windows, the same schema.
"""
from __future__ import annotations

import atexit
import logging
import numbers
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from emolive.engine.analysis import Analysis, PartialAnalysis, Per, analyze_input, open_input, records_frame
from emolive.engine.batch import BatchError, ScoreOptions, analyze_all, collect_inputs
from emolive.engine.closing import Closing
from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_MODEL, DEFAULT_WINDOW_S
from emolive.engine.errors import EmoliveError
from emolive.engine.plugin import ModelPlugin, check_plugin, load_model
from emolive.engine.runner import Runner
from emolive.engine.schema import Estimate, Turn, printable
from emolive.engine.session import StreamConfig, open_stream
from emolive.engine.sinks.base import Sink
from emolive.engine.sources import AudioSourceError
from emolive.engine.sources.base import check_rate, distinct_channels
from emolive.engine.sources.microphone import MicrophoneOptions

if TYPE_CHECKING:
    import pandas

Input = str | os.PathLike[str] | object  # a path, or an array-like of samples
log = logging.getLogger("emolive")
# the engines of stream() iterators still running: stopped at interpreter exit (_stop_streams)
_RUNNING: set[tuple[Runner, threading.Thread]] = set()
LIVE_WAITING = 20  # estimates a live stream keeps for a loop that is behind: 10 s at the default 0.5 s hop
STOP_AT_EXIT_S = 5.0  # a run stops within a poll and one model call; a teacher's window on a busy core is slower


@atexit.register
def _stop_streams() -> None:
    """Stop the engines of stream() iterators left open (a notebook's or script's global), before the
    interpreter finalises: their daemon threads were cut down inside onnxruntime's native code, and the
    process aborted (SIGABRT, `terminate called without an active exception`) in 2 runs of 10."""
    running = list(_RUNNING)
    for runner, _ in running:
        runner.stop()
    for _, thread in running:
        thread.join(STOP_AT_EXIT_S)

__all__ = ["Analysis", "Analyses", "PartialAnalysis", "analyze", "stream", "load_model"]


class Analyses(list[Analysis]):
    """One Analysis per file of a batch, in input order; a file that failed has its `error` set."""

    def to_records(self, per: Per = "window") -> list[dict[str, Any]]:
        """Every file's rows, one table (each row names its `file`)."""
        return [row for analysis in self for row in analysis.to_records(per)]

    def to_dataframe(self, per: Per = "window") -> pandas.DataFrame:
        """`to_records(per)` as a pandas DataFrame indexed by (file, start, end)."""
        return records_frame(self.to_records(per))

    @property
    def errors(self) -> dict[str, str]:
        """file -> why it failed (or was read only in part), for the files that did; a file the batch
        listed twice (also as `./name`) is one key: each Analysis of the list keeps its own `error`."""
        return {analysis.file: analysis.error for analysis in self if analysis.error}


def analyze(source: Input | Sequence[str | os.PathLike[str]], *, sample_rate: float | None = None,
            model: str | ModelPlugin = DEFAULT_MODEL, window: float = DEFAULT_WINDOW_S, hop: float = DEFAULT_HOP_S,
            start: float = 0.0, end: float | None = None, channels: Sequence[int] = (),
            num_workers: int = 1) -> Analysis | Analyses:
    """Estimate emotion over a sound file, or an array of samples shaped (frames,), (frames, channels)
    or (channels, frames) (the shorter axis, of at most 32, is channels); lists and torch tensors too.
    Many files at once: a list of paths, a folder (searched recursively) or a manifest CSV (a `path`
    column) give `Analyses`, one Analysis per file, as `emolive score` scores them.

    Files are WAV, FLAC, MP3, M4A, WebM, MP4 or anything else libsndfile or FFmpeg decodes. An
    array needs its `sample_rate` (1-768 kHz); any rate and channel count is downmixed and
    resampled to the model's 16 kHz, as files and microphones are; `channels` (numbered from 1) mixes
    only those, as `emolive score --channel` does (one side of a call). `start`/`end` (seconds) analyse
    a stretch; the estimates keep the recording's times. `model` is a name from `emolive models`,
    a bundle directory, or an already loaded plugin (load it once with `load_model` when scoring
    many inputs). `num_workers` > 1 analyses a batch in that many processes (each loads `model`,
    which must then be a name or a path).

    Errors the caller can fix raise `emolive.EmoliveError`; one input that breaks part way raises
    its subclass `PartialAnalysis`, whose `analysis` holds what was read before the damage. In a
    batch nothing raises for one file: its Analysis carries the `error` (`Analyses.errors`).
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise BatchError(f"num_workers={num_workers!r}: give a whole number of processes, 1 or more")
    picked = _channels(channels)
    if _is_batch(source):
        if sample_rate is not None:  # a batch ran on without a word, each file at its own rate
            raise BatchError("sample_rate is for arrays; the files of a batch each say their own rate")
        options = ScoreOptions(window=window, hop=hop, start=start, end=end, keep_all=True, channels=picked)
        return _analyze_batch(source, model, options, num_workers)
    return analyze_input(source, _plugin(model), sample_rate=sample_rate, window=window, hop=hop, start=start, end=end,
                         channels=picked)


def _channels(channels: object) -> tuple[int, ...]:
    """`channels` as the sources take them: whole numbers from 1, in any sequence (a list, a range, an
    array)."""
    picked = list(channels) if isinstance(channels, Iterable) and not isinstance(channels, (str, bytes)) else None
    if picked is None or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 1
                                 for c in picked):
        raise AudioSourceError(f"channels={channels!r}: give a list of channel numbers counted from 1, e.g. [2]")
    return distinct_channels(tuple(int(c) for c in picked), f"channels={channels!r}")


def _is_batch(source: object) -> bool:
    """A folder, a manifest CSV, or a list of paths: many files (a list of numbers is samples)."""
    if isinstance(source, (str, os.PathLike)):
        return os.path.isdir(source) or os.fspath(source).lower().endswith(".csv")
    return isinstance(source, (list, tuple)) and bool(source) and all(isinstance(item, (str, os.PathLike))
                                                                       for item in source)


def _analyze_batch(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], model: str | ModelPlugin,
                   options: ScoreOptions, num_workers: int) -> Analyses:
    paths = collect_inputs([source] if isinstance(source, (str, os.PathLike)) else source)
    if num_workers > 1 and not isinstance(model, (str, os.PathLike)):
        raise BatchError("num_workers > 1 loads the model in each worker: give its name or bundle path, not a plugin")
    jobs = max(1, min(num_workers, len(paths)))
    if jobs > 1:  # each worker loads the model: this process does not
        return Analyses(analyze_all(paths, None, replace(options, model=os.fspath(model)), jobs))
    return Analyses(analyze_all(paths, _plugin(model), options, jobs))


def _plugin(model: str | ModelPlugin) -> ModelPlugin:
    """A model by name or bundle path, or the plugin the caller loaded once for many calls."""
    if isinstance(model, (str, os.PathLike)):
        return load_model(os.fspath(model))
    if not isinstance(model, ModelPlugin):
        raise EmoliveError(f"model={model!r}: give a name from `emolive models`, a bundle path, or a model "
                           "emolive.load_model returned")
    return check_plugin(model, printable(str(getattr(model, "name", "?")), 80) or "(no name)")  # not "model 's"


class _Forward(Sink):
    """Hands each estimate (and each turn, when asked for) to the consumer's queue. Live, at most
    `keep` wait there: a loop slower than the hop fell ever further behind (10 s after 20 estimates of
    a 1 s loop body) and grew without bound, where every other live output drops the oldest."""

    def __init__(self, out: queue.Queue[Any], turns: bool) -> None:
        self.out, self.turns = out, turns
        self.keep: int | None = None
        self.skipped = 0

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._put(estimate)

    def turn(self, turn: Mapping[str, Any]) -> None:
        if self.turns:
            self._put(turn)

    def _put(self, item: Mapping[str, Any]) -> None:
        if self.keep is not None and self.out.qsize() >= self.keep:
            try:
                self.out.get_nowait()
            except queue.Empty:  # the loop took it meanwhile
                pass
            else:
                if not self.skipped:
                    log.warning("emolive.stream: the loop takes longer than the hop, so the oldest of the %d "
                                "waiting estimates are skipped, as a live output's slow reader misses them", self.keep)
                self.skipped += 1
        self.out.put(item)

    def takes_turns(self) -> bool:
        return self.turns

    def close(self) -> None:
        """Nothing to release."""


def stream(source: Input | None = None, *, sample_rate: float | None = None, model: str | ModelPlugin = DEFAULT_MODEL,
           window: float = DEFAULT_WINDOW_S, hop: float = DEFAULT_HOP_S, microphone: MicrophoneOptions | None = None,
           realtime: bool = False, turns: bool = False, stream_id: str = "default",
           channels: Sequence[int] = ()) -> Iterator[Estimate | Turn]:
    """Live estimates, one per hop, as they are made; turns too with `turns=True` (they carry "kind").

    `source` is what `emolive stream --source` takes (None: the microphone, or the bundled demo clip
    at real time where there is none; `microphone` picks the device and its channels; "-": raw mono
    float32 PCM on stdin at `sample_rate`, 16 kHz by default: other layouts through `emolive stream
    --source - --rate --channels --raw-format`), or an array
    of samples with its `sample_rate`, in any layout `analyze` takes (streamed as fast as the model
    goes; `realtime` paces files). `channels` (numbered from 1) mixes only those, as in `analyze`. The
    engine runs on its own thread; leaving the loop (or closing the iterator) stops it, and an error in
    the engine is raised here.
    """
    plugin = _plugin(model)
    if microphone is not None and not isinstance(microphone, MicrophoneOptions):
        raise EmoliveError(f"microphone={microphone!r}: give emolive.MicrophoneOptions(device=..., channels=...)")
    picked = _channels(channels)
    if picked and microphone is not None and microphone.channels:
        raise EmoliveError("channels= and microphone=MicrophoneOptions(channels=...) both pick channels: give one")
    # the microphone's options carry the channels of a file or a device alike (open_source)
    options = replace(microphone or MicrophoneOptions(), channels=picked) if picked else microphone
    out: queue.Queue[Any] = queue.Queue()
    forward = _Forward(out, turns)
    sinks = [forward]
    if source is None or isinstance(source, (str, os.PathLike)):
        stdin = source == "-" and sample_rate is not None  # 0 too: "outside the range", not "says its own rate"
        raw = {"raw_rate": float(check_rate(sample_rate, "sample_rate"))} if stdin else {}
        if sample_rate is not None and not raw:
            raise AudioSourceError("sample_rate is for arrays and raw PCM on stdin ('-'); "
                                   f"{source or 'the microphone'} says its own rate")
        opened = open_stream(StreamConfig(source=None if source is None else os.fspath(source),
                                          microphone=options, window_s=window, hop_s=hop,
                                          realtime=realtime, stream_id=stream_id, **raw))
        audio: Closing = opened
        runner = opened.runner(plugin, sinks)
        if opened.stood_in:  # the command line says so as it starts; a program must hear it too
            log.warning("emolive.stream: %s", opened.description)
    else:
        if microphone is not None or realtime:  # refused, not ignored, as the command line refuses them
            raise EmoliveError(f"{'microphone=' if microphone is not None else 'realtime='} is for the microphone "
                               "and files; samples stream as fast as the model goes (pick channels with channels=)")
        audio = open_input(source, sample_rate, channels=picked)
        runner = Runner(audio, plugin, sinks, window_s=window, hop_s=hop, stream_id=stream_id)
    forward.keep = LIVE_WAITING if runner.live else None
    done = object()

    def run() -> None:
        try:
            runner.run()
        except BaseException as exc:  # handed to the consumer's thread, where it is raised
            out.put(exc)
        finally:
            out.put(done)

    thread = threading.Thread(target=run, name="emolive-stream", daemon=True)
    _RUNNING.add((runner, thread))
    thread.start()
    try:
        while (item := out.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        runner.stop()
        thread.join()
        _RUNNING.discard((runner, thread))
        audio.close()
        if forward.skipped:
            log.warning("emolive.stream: %d estimate(s) skipped while the loop was behind", forward.skipped)
