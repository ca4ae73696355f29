"""Label tables on disk: a CSV with required columns, read as numbered rows for error messages.

The reading is the engine's (engine/tables.py: UTF-8 with or without a byte-order mark, every
malformed row one line naming its file and line); here its errors are `TrainerError`s, which
`trainer`'s CLI reports as one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from emolive.engine import tables
from emolive.trainer.errors import TrainerError


def csv_rows(path: Path, required: tuple[str, ...],
             optional: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a label table with the `required` columns (and the
    `optional` ones it reads where present: engine.tables.csv_rows)."""
    return tables.csv_rows(path, required, "table", TrainerError, optional)
