"""A live table for people watching a terminal: `emolive stream` and `emolive listen` both print it."""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from emolive.engine.sinks.base import Sink, SinkError

HEADER = f"{'window (s)':>15}  {'act':>5} {'val':>5} {'dom':>5}  {'top class':<16}  speech"


def format_row(estimate: Mapping[str, Any]) -> str:
    """One line per estimate: stream-time span, A/V/D, most probable class, speech flag and voiced ratio."""
    classes = estimate["classes"]
    top = max(classes, key=classes.get) if classes else ""
    top_text = f"{top} {classes[top]:.2f}" if top else "-"
    speech = "yes" if estimate["speech"] else "no "
    span = f"{estimate['start']:.2f}-{estimate['end']:.2f}"
    return (f"{span:>15}  {estimate['activation']:5.2f} {estimate['valence']:5.2f} {estimate['dominance']:5.2f}  "
            f"{top_text:<16}  {speech} ({100 * estimate['voiced_ratio']:3.0f}% voiced)")


class TableSink(Sink):
    """Print a header, then one row per estimate; status lines only when audio or windows were lost."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._header_done = False
        self._losses = (0, 0)

    def emit(self, estimate: Mapping[str, Any]) -> None:
        if not self._header_done:
            self._write(HEADER)
            self._header_done = True
        self._write(format_row(estimate))

    def status(self, status: Mapping[str, Any]) -> None:
        losses = (status["skipped_windows"], status["dropped_blocks"])
        if losses != self._losses:
            self._losses = losses
            self._write(f"# lost so far: {losses[0]} windows skipped (model behind real time), "
                        f"{losses[1]} audio blocks dropped (source overrun); lag {status['lag_s']:.2f} s")

    def _write(self, line: str) -> None:
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except BrokenPipeError:
            raise SinkError("the reader of the table closed its end of the pipe") from None

    def close(self) -> None:
        """Nothing to release: the stream belongs to the caller (usually stdout)."""
