"""CSV file output, one row per estimate, for spreadsheets and quick plots.

Each row is formatted first and written with one write (engine.sinks.lines), so the file holds
whole rows only, even when the disk fills up mid-run.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from emolive.engine.files import empty_if_regular, open_locked
from emolive.engine.sinks.base import Sink, SinkError
from emolive.engine.sinks.lines import LineWriter

CLASS_PREFIX = "p_"


def flat_row(estimate: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar fields in payload order, then one `p_<class>` column per class probability."""
    row = {name: value for name, value in estimate.items() if name != "classes"}
    row.update({CLASS_PREFIX + name: p for name, p in estimate.get("classes", {}).items()})
    return row


def csv_line(values: Sequence[Any]) -> str:
    """One CSV record without its line end; a record with a line break in a field, or a field with
    spaces at either end (' take 1.wav' came back 'take 1.wav' from a reader skipping initial spaces),
    has every field quoted. Python 3.11's csv quotes only its own line terminator's characters: a file name holding
    '\r' went out bare and split the row for every reader (a score table is read back as a manifest),
    and with no terminator neither '\r' nor '\n' was quoted."""
    breaks = any(isinstance(value, str) and ("\r" in value or "\n" in value or value != value.strip())
                 for value in values)  # and a value's own leading spaces, which a reader skipping them lost
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL if breaks else csv.QUOTE_MINIMAL).writerow(values)
    return buffer.getvalue()[:-1]


class CsvSink(Sink):
    """Write estimates to a CSV file whose header comes from the first estimate; one write per row.

    The file is opened at once (an unwritable path fails before the run) with an exclusive lock, so a
    second run into it is refused (two streams into one file interleaved their rows, both exit 0); it
    is emptied only once the run reads audio: a run that failed to start (a pipeline's typo, stdin
    empty) had emptied the results of the last run."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            fd = open_locked(self.path)
        except OSError as exc:
            raise SinkError(f"cannot write CSV to {self.path}: {exc.strerror or exc}") from None
        if fd is None:
            raise SinkError(f"cannot write CSV to {self.path}: another process is writing it (another emolive "
                            "stream?); give another --csv")
        self._file = os.fdopen(fd, "wb", buffering=0)  # unbuffered: LineWriter hands each row to the OS
        self._out = LineWriter(self._file, f"CSV to {self.path}")
        self._columns: list[str] | None = None
        self._started = False

    def _start(self) -> None:
        if not self._started:
            empty_if_regular(self._file.fileno())
            self._started = True

    def status(self, status: Mapping[str, Any]) -> None:
        if status.get("audio_s", 0) > 0:  # the run has audio: its table replaces the last one, estimates or not
            self._start()

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._start()
        row = flat_row(estimate)
        lines = [csv_line(list(row.values()))]
        if self._columns is None:
            lines.insert(0, csv_line(list(row)))
        elif list(row) != self._columns:
            raise SinkError(f"estimate columns changed mid-stream in {self.path}: {list(row)}")
        self._out.write(lines)
        self._columns = list(row)

    def close(self) -> None:
        self._file.close()
