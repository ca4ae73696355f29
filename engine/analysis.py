"""Offline analysis of one recording or array: every window, every speech turn, the whole recording.

This is the analysis core behind `emolive.analyze` and `emolive score`: the input runs through the
engine's one live path (`engine.runner.Runner`), so an analysis says what a stream would. Two
whole-recording figures are kept because they answer different questions:

- `whole`: one model pass over the entire recording (a turn of kind "stream"), what the model
  says when it hears everything at once. The shipped models were trained on clips of 1-10 s, so
  for a long recording this is an extrapolation;
- `speech_mean()`: the mean of the speech windows' estimates, each made on the window length the
  live stream uses. On a 10-minute file the two differ (activation 5.81 vs 5.02 was seen).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_WINDOW_S, SCORE_PER
from emolive.engine.errors import EmoliveError
from emolive.engine.plugin import ModelPlugin
from emolive.engine.runner import OFFLINE_BLOCK_SIZE, Runner
from emolive.engine.schema import DIMENSIONS, Estimate, Turn, printable
from emolive.engine.sinks.base import Sink
from emolive.engine.sinks.csv_sink import CLASS_PREFIX, flat_row
from emolive.engine.sources import ArraySource, AudioSource, AudioSourceError, FileSource
from emolive.engine.sources.base import SAMPLE_RATE
from emolive.engine.sources.trim import TrimmedSource
from emolive.engine.table_names import name_text, table_text

if TYPE_CHECKING:
    import pandas

Per = Literal["window", "turn", "file"]
MEAN_PREFIX = "mean_"  # a file row's speech-window means: mean_activation, mean_valence, mean_dominance
INDEX = ["file", "start", "end"]  # a table's index: which recording, which stretch of it
TEXT_FIELDS = ("file", "label", "model", "error")  # a table's text columns; the rest hold values


class TableError(EmoliveError, ValueError):
    """A table asked for in a way that names no table: the text lists the valid choices."""


def table_columns(class_names: Sequence[str], per: Per) -> list[str]:
    """A table's columns, the same for `to_records` and `emolive score` (whose first is `path`): the
    file, its stretch, the values (a file row with its speech-window means), the top label, one
    p_<class> per class, the model's name, and error (empty when the file was read whole)."""
    return ["file", "start", "end", *DIMENSIONS, *(MEAN_PREFIX + name for name in DIMENSIONS if per == "file"),
            "speech", "voiced_ratio", "label", *(CLASS_PREFIX + name for name in class_names), "model", "error"]


def check_per(per: object) -> None:
    """`per` must name a table: a bare KeyError deep inside would not say which names do."""
    if per not in SCORE_PER:
        raise TableError(f"per={per!r}: give {', '.join(map(repr, SCORE_PER[:-1]))} or {SCORE_PER[-1]!r}")


@dataclass
class Analysis:
    """What the analysis of one input found: one estimate per window, one per speech turn, one over
    the whole recording (`whole`, None only where the input failed before any estimate: its `error`
    says why, as for audio shorter than one 25 ms frame).

    `file` names the recording ("" for an array); `error` is "" unless the input failed (then the
    estimates are those of the audio read before the failure, possibly none). `model` and
    `class_names` are the model's, so even a file without estimates has a row of the full table.
    Rows for a table come from `to_records(per)`: the class probabilities become `p_<class>`
    columns and `label` is the most probable class.
    """

    windows: list[Estimate] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    whole: Turn | None = None
    file: str = ""
    error: str = ""
    model: str = ""
    class_names: tuple[str, ...] = ()
    input_rate: float | None = None  # the rate the input was recorded at, where it was converted (AudioSource)
    # the speech windows' running sums, kept even when the windows themselves are not (a file row)
    _speech_windows: int = field(default=0, repr=False)
    _speech_sums: list[float] = field(default_factory=lambda: [0.0] * len(DIMENSIONS), repr=False)

    def add_window(self, estimate: Estimate, keep: bool = True) -> None:
        """Count a window into the speech mean, and keep it in `windows` if `keep`."""
        if estimate["speech"]:
            self._speech_windows += 1
            self._speech_sums = [total + estimate[name] for total, name in zip(self._speech_sums, DIMENSIONS)]
        if keep:
            self.windows.append(estimate)

    def speech_mean(self) -> dict[str, float] | None:
        """The mean activation, valence and dominance of the windows flagged as speech (None without any)."""
        if not self._speech_windows:
            return None
        return {name: total / self._speech_windows for name, total in zip(DIMENSIONS, self._speech_sums)}

    @classmethod
    def of(cls, plugin: ModelPlugin, file: str = "", error: str = "") -> Analysis:
        """An empty analysis of `file` by `plugin` (with `error`, one that failed before any estimate)."""
        return cls(file=file, error=error, model=plugin.name, class_names=tuple(plugin.meta.class_names))

    def to_records(self, per: Per = "window") -> list[dict[str, Any]]:
        """The rows `emolive score --per` writes for this input, with `file` for score's `path`: one
        per window, turn, or the one whole-file row (which also holds the speech windows' means,
        empty without speech); a value that is not there is "". An input without such rows still
        has one, so no file vanishes from a table: its error, or for a file without a speech turn its
        span with `speech` False and no estimates."""
        check_per(per)
        items: Sequence[Mapping[str, Any]] = {"window": self.windows, "turn": self.turns,
                                              "file": [self.whole] if self.whole else []}[per]
        rows = [{**flat_row(item), "label": top_label(item)} for item in items] or [self._no_estimate_row()]
        if per == "file" and self.whole:
            mean = self.speech_mean() or {}
            rows[0].update({MEAN_PREFIX + name: mean.get(name, "") for name in DIMENSIONS})
        known = {"file": self.file, "model": self.model, "error": self.error}
        columns = table_columns(self.class_names, per)
        return [{name: values.get(name, "") for name in columns} for values in ({**known, **row} for row in rows)]

    def _no_estimate_row(self) -> dict[str, Any]:
        """The row of an input with none of the rows asked for: the recording's span, not speech (a
        file without a speech turn), or nothing but the error."""
        return {"start": self.whole["start"], "end": self.whole["end"], "speech": False} if self.whole else {}

    def to_dataframe(self, per: Per = "window") -> pandas.DataFrame:
        """`to_records(per)` as a pandas DataFrame indexed by (file, start, end) (pandas is imported only here)."""
        return records_frame(self.to_records(per))


def top_label(estimate: Mapping[str, Any]) -> str:
    """The most probable class of an estimate ("" for a model without a class head)."""
    classes = estimate.get("classes") or {}
    return max(classes, key=classes.__getitem__) if classes else ""


KEPT_EMPTY = ("file", "model", "error")  # "" is a value there (no error); elsewhere, a label too, it is a missing one


def records_frame(records: list[dict[str, Any]]) -> pandas.DataFrame:
    """Rows as a DataFrame indexed by (file, start, end), as audinterface and openSMILE index theirs;
    a value that is not there is NaN (a failed file's label too), so its row leaves the columns numeric,
    and NA in `speech`, pandas' nullable boolean: NaN made it an object column, and `frame[frame.speech]`
    raised as soon as one file of a batch had failed."""
    import pandas

    # text as `emolive score` writes it (engine.table_names): a file name that is no UTF-8, held as surrogates,
    # was refused by pandas' string dtype, and the whole batch's table was a traceback
    frame = pandas.DataFrame([{name: math.nan if value == "" and name not in KEPT_EMPTY else
                               name_text(value) if name == "file" else
                               table_text(value) if isinstance(value, str) else value
                               for name, value in record.items()} for record in records])
    if "speech" in frame:
        frame["speech"] = frame["speech"].astype("boolean")
    return frame.set_index(INDEX) if len(frame) else frame


class PartialAnalysis(AudioSourceError):
    """The input failed part way (a damaged file): `analysis` holds every estimate of the audio read
    before the damage, the message says where and why."""

    def __init__(self, message: str, analysis: Analysis) -> None:
        super().__init__(message)
        self.analysis = analysis

    def __reduce__(self) -> tuple[type, tuple[str, Analysis]]:
        """Both arguments, so the error crosses a process boundary (a ProcessPoolExecutor's result) and
        copies with what was read: the default rebuilt it from the message alone, and the TypeError broke
        the caller's whole pool, its good files' results with it."""
        return type(self), (str(self), self.analysis)


class Collector(Sink):
    """Keeps a runner's estimates and turns in an Analysis, their times moved by `first_sample` (where
    the analysed stretch starts in its recording). `rows` names the only rows a caller wants ("file":
    neither windows nor turns are kept, so memory does not grow with the recording)."""

    def __init__(self, analysis: Analysis, first_sample: int = 0, rows: Per | None = None) -> None:
        self.analysis, self.first_sample = analysis, first_sample
        self.keep_windows, self.keep_turns = rows in (None, "window"), rows in (None, "turn")

    def _placed(self, item: Mapping[str, Any]) -> Any:
        """The item at its time in the recording, counted in samples as the runner counts them: seconds
        added to seconds gave 8.004999999999999 where the whole recording's window ends at 8.005, so a
        stretch's rows missed the recording's on a join, and a numpy `start=` made every time float32."""
        if not self.first_sample:
            return item
        return {**item, **{name: (round(item[name] * SAMPLE_RATE) + self.first_sample) / SAMPLE_RATE
                           for name in ("start", "end")}}

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self.analysis.add_window(self._placed(estimate), self.keep_windows)

    def turn(self, turn: Mapping[str, Any]) -> None:
        if turn["kind"] == "stream":
            self.analysis.whole = self._placed(turn)
        elif self.keep_turns:
            self.analysis.turns.append(self._placed(turn))

    def takes_turns(self) -> bool:
        return self.keep_turns

    def close(self) -> None:
        """Nothing to release."""


def analyze_input(source: str | os.PathLike[str] | object, plugin: ModelPlugin, *, sample_rate: float | None = None,
                  window: float = DEFAULT_WINDOW_S, hop: float = DEFAULT_HOP_S, start: float = 0.0,
                  end: float | None = None, rows: Per | None = None, warn_narrowband: bool = True,
                  channels: tuple[int, ...] = ()) -> Analysis:
    """Analyse a sound file or an array-like of samples (with its `sample_rate`) from `start` to
    `end` seconds, its 1-based `channels` mixed (all where empty), keeping every window and turn, or
    only the `rows` a table wants (Collector);
    errors the caller can fix raise EmoliveError, a failure part way PartialAnalysis. A batch warns
    once about audio below 16 kHz, not per file (`warn_narrowband`, Runner)."""
    analysis = Analysis.of(plugin, os.fspath(source) if isinstance(source, (str, os.PathLike)) else "")
    with open_input(source, sample_rate, start, end, channels) as audio:
        analysis.input_rate = audio.input_rate
        try:
            Runner(audio, plugin, [Collector(analysis, round(start * SAMPLE_RATE), rows)], window_s=window, hop_s=hop,
                   live=False, whole_stream=True, warn_narrowband=warn_narrowband).run()
        except AudioSourceError as exc:
            if analysis.whole is None:
                raise
            analysis.error = " ".join(str(exc).split())
            raise PartialAnalysis(str(exc), analysis) from None
    return analysis


def open_input(source: str | os.PathLike[str] | object, sample_rate: float | None, start: float = 0.0,
               end: float | None = None, channels: tuple[int, ...] = ()) -> AudioSource:
    """The source for a path or an array-like, its `channels` mixed (all where empty), trimmed to
    [start, end) seconds when either is given."""
    if not isinstance(source, (str, os.PathLike)):  # an array, a list, a torch tensor
        check_samples(source, sample_rate)
        audio: AudioSource = ArraySource(source, sample_rate, block_size=OFFLINE_BLOCK_SIZE, channels=channels)
    elif sample_rate is not None:
        raise AudioSourceError(f"sample_rate is for arrays; {os.fspath(source)} says its own rate")
    else:
        audio = FileSource(source, block_size=OFFLINE_BLOCK_SIZE, channels=channels)
    return audio if start == 0 and end is None else TrimmedSource(audio, start, end)


def check_samples(source: object, sample_rate: float | None) -> None:
    """An input that is not a path is taken as samples: say so, and what is accepted, where it cannot
    be (bytes, paths in a list, nothing), rather than let numpy make a 0-d array of it."""
    accepted = "give a file path, or samples (an array, list or tensor) with sample_rate="
    if source is None or isinstance(source, (bool, int, float, complex)):
        raise AudioSourceError(f"{source!r} is neither a file path nor samples: {accepted}")
    # a memoryview of samples (format "f", "h", ...) is read as numpy reads it; one of bytes is bytes
    if isinstance(source, (bytes, bytearray)) or (isinstance(source, memoryview) and source.format in ("B", "b", "c")):
        raise AudioSourceError(f"{getattr(source, 'nbytes', len(source))} bytes were taken as samples: {accepted}; for "
                               "an encoded file's bytes, save them to a file or decode them first "
                               "(soundfile.read(io.BytesIO(data)))")
    if isinstance(source, (list, tuple)) and any(isinstance(item, (str, os.PathLike)) for item in source):
        other = next(((i, item) for i, item in enumerate(source) if not isinstance(item, (str, os.PathLike))), None)
        if other is None:  # only emolive.analyze takes a batch
            raise AudioSourceError(f"a {type(source).__name__} holding paths was taken as one input: give one file "
                                   "path, or samples with sample_rate=; a list of paths is a batch, for emolive.analyze")
        # printable, bounded: an array's repr is many lines
        raise AudioSourceError(f"a {type(source).__name__} of paths is a batch, but item {other[0]} is "
                               f"{printable(' '.join(repr(other[1]).split()), 60)}: give only paths, or samples with "
                               "sample_rate=")
    if hasattr(source, "read"):  # an open file: numpy would make a 0-d array of the object
        raise AudioSourceError(f"an open file ({type(source).__name__}) was given: give its path, or decode it first "
                               "(soundfile.read(f)) and pass the samples with sample_rate=")
    if isinstance(source, (list, tuple)) and not source:
        raise AudioSourceError(f"an empty {type(source).__name__} was taken as samples and holds none: {accepted}, "
                               "or (to emolive.analyze) a list of paths")
    if sample_rate is None:
        raise AudioSourceError(f"an array of samples needs its sample rate ({type(source).__name__} given without "
                               "one): pass sample_rate=…, or give a file path")
