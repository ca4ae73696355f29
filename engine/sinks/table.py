"""A live table for people watching a terminal: `emolive stream` and `emolive listen` both print it."""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from emolive.engine.schema import end_line, printable
from emolive.engine.sinks.base import Sink
from emolive.engine.sinks.lines import LineWriter

HEADER = f"{'window (s)':>15}  {'act':>5} {'val':>5} {'dom':>5}  {'top class':<16}  speech"
CLASS_CHARS = 24  # a class name from a stream can be any string: keep the row one line


def format_row(estimate: Mapping[str, Any]) -> str:
    """One line per estimate: stream-time span, A/V/D, most probable class, speech flag and voiced ratio."""
    classes = estimate["classes"]
    top = max(classes, key=classes.get) if classes else ""
    top_text = f"{printable(top, CLASS_CHARS)} {classes[top]:.2f}" if top else "-"
    speech = "yes" if estimate["speech"] else "no "
    span = f"{estimate['start']:.2f}-{estimate['end']:.2f}"
    return (f"{span:>15}  {estimate['activation']:5.2f} {estimate['valence']:5.2f} {estimate['dominance']:5.2f}  "
            f"{top_text:<16}  {speech} ({100 * estimate['voiced_ratio']:3.0f}% voiced)")


class TableSink(Sink):
    """Print a header, then one row per estimate; status lines only when audio or windows were lost, and
    (`announce_end`: `emolive listen`, which cannot tell otherwise) where a stream ended."""

    def __init__(self, stream: TextIO | None = None, announce_end: bool = False) -> None:
        self._out = LineWriter(stream if stream is not None else sys.stdout, "the table")
        self._announce_end = announce_end
        self._header_done = False
        self._losses: dict[str, tuple[int, int]] = {}  # each stream's, said when they change, until it ends

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._write_row(format_row(estimate))

    def note_turn(self, turn: Mapping[str, Any]) -> None:
        """A speech turn (`emolive listen --turns`) as a row of its own, marked: the estimate over its span.
        Not `turn`: that would make every table a taker of turns, and a run compute them for it."""
        self._write_row(f"# {turn['kind']} {format_row(turn).lstrip()}")

    def _write_row(self, row: str) -> None:
        """A row, under the header (a turn may come before the first estimate)."""
        self._out.write([row] if self._header_done else [HEADER, row])
        self._header_done = True

    def status(self, status: Mapping[str, Any]) -> None:
        losses = (status["skipped_windows"], status["dropped_blocks"])
        if losses != self._losses.get(status["stream"], (0, 0)):
            self._losses[status["stream"]] = losses
            self._out.write([f"# lost so far: {losses[0]} windows skipped (model behind real time), "
                             f"{losses[1]} audio blocks dropped (source overrun); lag {status['lag_s']:.2f} s "
                             f"(stream {printable(status['stream'], 64)})"])
        ended = end_line(status)  # status extras (engine.runner)
        if ended:  # `listen` goes on to the stream's next run, whose counts start again at 0
            self._losses.pop(status["stream"], None)
        if self._announce_end and ended:
            self._out.write([f"# {ended}"])

    def close(self) -> None:
        """Nothing to release: the stream belongs to the caller (usually stdout)."""
