"""Whole lines or an error: the one way the text sinks (table, JSON lines, CSV) write.

A line is built first and handed to the OS in one write (looping only if the OS takes part of
it), so a pipe's reader never sees half a line from a sink (pipe writes up to PIPE_BUF, 4 kB,
are atomic). When a write fails (a full disk, /dev/full, EIO) a regular file is truncated back
to where the line began, so it holds whole rows only, and the failure is one SinkError line;
so is a reader that closed its end of the pipe.
"""
from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Sequence
from typing import IO

from emolive.engine.sinks.base import SinkError
from emolive.engine.table_names import table_text


class LineWriter:
    """Writes whole lines to `stream` (a real file or pipe, or an in-memory stream in tests)."""

    def __init__(self, stream: IO, what: str) -> None:
        """`what` names the output in errors: "the table", "the JSON lines", "CSV file out.csv"."""
        if stream is None:  # a standard stream closed at the start (`>&-`): Python's sys.stdout is None
            raise SinkError(f"cannot write {what}: standard output is closed")
        self._stream, self.what = stream, what
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            self._fd: int | None = stream.fileno()
        except io.UnsupportedOperation:  # StringIO and pytest's capture: no descriptor, nothing to truncate
            self._fd = None
        self._regular = self._fd is not None and stat.S_ISREG(os.fstat(self._fd).st_mode)

    def write(self, lines: Sequence[str]) -> None:
        """Write `lines` (each without its newline) in one go, or raise SinkError having written none. A
        name's bytes that are not UTF-8 are written \\xNN, as tables write them (engine.table_names)."""
        text = table_text("".join(line + "\n" for line in lines))
        start = None
        try:
            if self._fd is None:
                self._stream.write(text)
                self._stream.flush()
                return
            self._stream.flush()  # whatever was printed through the stream before goes first
            start = os.lseek(self._fd, 0, os.SEEK_CUR) if self._regular else None
            data = memoryview(text.encode(self._encoding, errors="backslashreplace"))
            while data:
                data = data[os.write(self._fd, data):]
        except BrokenPipeError:
            raise SinkError(f"the reader of {self.what} closed its end of the pipe") from None
        except OSError as exc:  # the write itself failed: ENOSPC, EIO, EDQUOT, EFBIG…
            if start is not None:
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
            raise SinkError(f"cannot write {self.what}: {exc.strerror or exc}") from None


def print_line(text: str) -> None:
    """A command's output on standard output (`emolive models`, `trainer evaluate`), whole or a SinkError
    (one line): printed, a full disk or /dev/full was a traceback, and a closed stdout (`>&-`) exit 0
    with the output gone."""
    LineWriter(sys.stdout, "standard output").write([text])
