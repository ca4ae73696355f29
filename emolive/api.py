"""The Python API: score a recording or an array in one call, or iterate over a live stream.

Both go through the engine's one live path (`engine.runner.Runner`), so what a program gets
here is exactly what `emolive stream` publishes: the same windows, the same schema.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Mapping

import numpy as np

from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_WINDOW_S
from emolive.engine.plugin import ModelPlugin, load_model
from emolive.engine.runner import OFFLINE_BLOCK_SIZE, Runner
from emolive.engine.schema import Estimate, Turn
from emolive.engine.session import StreamConfig, open_stream
from emolive.engine.sinks.base import Sink
from emolive.engine.sinks.csv_sink import flat_row
from emolive.engine.sources import ArraySource, AudioSource, AudioSourceError, FileSource
from emolive.engine.sources.microphone import MicrophoneOptions

if TYPE_CHECKING:
    import pandas

Per = Literal["window", "turn", "file"]

__all__ = ["Analysis", "PartialAnalysis", "analyze", "stream", "load_model"]


@dataclass
class Analysis:
    """What `analyze` found: one estimate per window, one per speech turn, one over the whole recording.

    `whole` is None only for audio shorter than one 25 ms frame. Rows for a table come from
    `to_records(per)`: the class probabilities become `p_<class>` columns, so
    `pandas.DataFrame(result.to_records())` is the whole conversion.
    """

    windows: list[Estimate] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    whole: Turn | None = None

    def to_records(self, per: Per = "window") -> list[dict[str, Any]]:
        """Flat rows (one per window, turn, or the one whole-file row), ready for CSV or pandas."""
        items: Sequence[Mapping[str, Any]] = {"window": self.windows, "turn": self.turns,
                                              "file": [self.whole] if self.whole else []}[per]
        return [flat_row(item) for item in items]

    def to_dataframe(self, per: Per = "window") -> pandas.DataFrame:
        """`to_records(per)` as a pandas DataFrame (pandas is optional: imported only here)."""
        import pandas

        return pandas.DataFrame(self.to_records(per))


class _Collect(Sink):
    """Keeps estimates and turns in lists, or hands each to a queue for `stream`."""

    def __init__(self, analysis: Analysis | None = None, out: queue.Queue[Any] | None = None,
                 turns: bool = False) -> None:
        self.analysis, self.out, self.turns = analysis, out, turns

    def emit(self, estimate: Mapping[str, Any]) -> None:
        if self.analysis is not None:
            self.analysis.windows.append(estimate)  # type: ignore[arg-type]  # the runner builds Estimate dicts
        if self.out is not None:
            self.out.put(estimate)

    def turn(self, turn: Mapping[str, Any]) -> None:
        if self.analysis is not None:
            if turn["kind"] == "stream":
                self.analysis.whole = turn  # type: ignore[assignment]
            else:
                self.analysis.turns.append(turn)  # type: ignore[arg-type]
        if self.out is not None and self.turns:
            self.out.put(turn)

    def close(self) -> None:
        """Nothing to release."""


class PartialAnalysis(AudioSourceError):
    """The input failed part way (a damaged file): `analysis` holds every estimate of the audio read
    before the damage, the message says where and why."""

    def __init__(self, message: str, analysis: Analysis) -> None:
        super().__init__(message)
        self.analysis = analysis


def analyze(source: str | os.PathLike[str] | np.ndarray, *, sample_rate: float | None = None,
            model: str | ModelPlugin = "student", window: float = DEFAULT_WINDOW_S,
            hop: float = DEFAULT_HOP_S) -> Analysis:
    """Estimate emotion over a sound file, or an array of samples shaped (frames,), (frames, channels)
    or (channels, frames) (the shorter axis, of at most 32, is channels); lists and torch tensors too.

    An array needs its `sample_rate` (1-768 kHz); any rate and channel count is downmixed and
    resampled to the model's 16 kHz, as files and microphones are. `model` is a name from `emolive models`, a bundle
    directory, or an already loaded plugin (load it once with `load_model` when scoring many inputs).
    Errors the caller can fix raise `emolive.EmoliveError`; an input that breaks part way raises its
    subclass `PartialAnalysis`, whose `analysis` holds what was read before the damage.
    """
    plugin = load_model(model) if isinstance(model, str) else model
    analysis = Analysis()
    with _open(source, sample_rate) as audio:
        try:
            Runner(audio, plugin, [_Collect(analysis)], window_s=window, hop_s=hop, live=False,
                   whole_stream=True).run()
        except AudioSourceError as exc:
            if analysis.whole is None:
                raise
            raise PartialAnalysis(str(exc), analysis) from None
    return analysis


def _open(source: str | os.PathLike[str] | np.ndarray, sample_rate: float | None) -> AudioSource:
    if not isinstance(source, (str, os.PathLike)):  # an array, a list, a torch tensor
        if sample_rate is None:
            raise AudioSourceError("an array needs its sample rate: analyze(samples, sample_rate=…)")
        return ArraySource(source, sample_rate, block_size=OFFLINE_BLOCK_SIZE)
    if sample_rate is not None:
        raise AudioSourceError(f"sample_rate is for arrays; {os.fspath(source)} says its own rate")
    return FileSource(source, block_size=OFFLINE_BLOCK_SIZE)


def stream(source: str | None = None, *, model: str | ModelPlugin = "student", window: float = DEFAULT_WINDOW_S,
           hop: float = DEFAULT_HOP_S, microphone: MicrophoneOptions | None = None, realtime: bool = False,
           turns: bool = False, stream_id: str = "default") -> Iterator[Estimate | Turn]:
    """Live estimates, one per hop, as they are made; turns too with `turns=True` (they carry "kind").

    `source` is what `emolive stream --source` takes (None: the microphone, or the bundled demo clip
    at real time where there is none; `microphone` picks the device and its channels). The engine runs on its own thread; leaving the loop (or
    closing the iterator) stops it, and an error in the engine is raised here.
    """
    plugin = load_model(model) if isinstance(model, str) else model
    audio = open_stream(StreamConfig(source=source, microphone=microphone, window_s=window, hop_s=hop,
                                     realtime=realtime, stream_id=stream_id))
    out: queue.Queue[Any] = queue.Queue()
    runner = audio.runner(plugin, [_Collect(out=out, turns=turns)])
    done = object()

    def run() -> None:
        try:
            runner.run()
        except BaseException as exc:  # handed to the consumer's thread, where it is raised
            out.put(exc)
        finally:
            out.put(done)

    thread = threading.Thread(target=run, name="emolive-stream", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        runner.stop()
        thread.join()
        audio.close()
