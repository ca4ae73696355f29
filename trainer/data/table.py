"""Label tables on disk: a CSV with required columns, read as numbered rows for error messages."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator


def csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; a missing required column is a clear error up front."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(required)}")
        yield from enumerate(reader, start=2)
