"""CSV file output, one row per estimate, for spreadsheets and quick plots."""
from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from typing import Any

from emolive.engine.sinks.base import Sink, SinkError

CLASS_PREFIX = "p_"


def flat_row(estimate: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar fields in payload order, then one `p_<class>` column per class probability."""
    row = {name: value for name, value in estimate.items() if name != "classes"}
    row.update({CLASS_PREFIX + name: p for name, p in estimate.get("classes", {}).items()})
    return row


class CsvSink(Sink):
    """Write estimates to a CSV file whose header comes from the first estimate; flushed per row."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._file = open(path, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write CSV to {self.path}: {exc.strerror}") from None
        self._writer: csv.DictWriter | None = None

    def emit(self, estimate: Mapping[str, Any]) -> None:
        row = flat_row(estimate)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row), lineterminator="\n")
            self._writer.writeheader()
        if list(row) != self._writer.fieldnames:
            raise SinkError(f"estimate columns changed mid-stream in {self.path}: {list(row)}")
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()
