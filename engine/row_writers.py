"""The table `emolive score` writes, by the output's extension: CSV, JSON lines or Parquet.

CSV and JSON lines go to the OS one file's rows at a time, in one write (engine.sinks.lines.LineWriter):
on a full disk, /dev/full or a closed pipe the output keeps whole rows only, and an interrupted
batch keeps every complete row. Parquet (where pyarrow is installed) writes a row group per
scored file and its footer when the batch ends, Ctrl-C and SIGTERM included.
"""
from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from emolive.engine.analysis import TEXT_FIELDS
from emolive.engine.errors import EmoliveError
from emolive.engine.files import empty_if_regular, is_within, open_locked
from emolive.engine.sinks.base import SinkError
from emolive.engine.sinks.csv_sink import csv_line
from emolive.engine.sinks.lines import LineWriter
from emolive.engine.table_names import table_text

Format = Literal["csv", "jsonl", "parquet"]
TEXT_COLUMNS = frozenset({"path", *TEXT_FIELDS})  # engine.batch.columns' text columns (`path`: to_records' `file`)


class OutputError(EmoliveError):
    """An output the user can fix: an unknown extension, Parquet without pyarrow."""


class RowWriter(Protocol):
    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append one file's rows (keys outside the table's columns are left out)."""

    def close(self) -> None:
        """Finish the table."""


def format_of(path: str | None) -> Format:
    """The table format an --out name asks for ('-' or None: CSV on stdout)."""
    if path is None or path == "-" or path.lower().endswith(".csv"):
        return "csv"
    if path.lower().endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if path.lower().endswith(".parquet"):
        if find_spec("pyarrow") is None:  # said before any file is scored
            raise OutputError(f"--out {path}: Parquet needs pyarrow (pip install pyarrow)")
        return "parquet"
    raise OutputError(f"--out {path}: give a .csv, .jsonl or .parquet file name")


def check_not_an_input(out: str, inputs: Sequence[str], option: str = "--out") -> None:
    """Refuse an output (`option`) that is one of the inputs (a manifest, a recording): opening it
    for writing would empty it before it is read, and what it held would be gone."""
    if out == "-" or not os.path.exists(out):
        return
    for spec in inputs:
        if os.path.exists(spec) and os.path.samefile(out, spec):
            raise OutputError(f"{option} {out} is also an input ({spec}): write to another file")


def check_not_in_bundle(out: str, model: object, option: str = "--out") -> None:
    """Refuse an output in the folder of the model bundle the run reads (`model`: a loaded model, whose
    `path` is its bundle's, or that folder), or one of its files under another name (a link): `stream
    --csv BUNDLE/model.safetensors` wrote the table over the weights it ran, for good (a graph can be
    exported again; trained weights cannot)."""
    bundle = model if isinstance(model, (str, os.PathLike)) else getattr(model, "path", None)
    if out == "-" or bundle is None or not os.path.isdir(bundle):
        return
    inside = is_within(out, bundle)
    if inside or any(os.path.exists(out) and os.path.samefile(out, entry.path) for entry in os.scandir(bundle)):
        raise OutputError(f"{option} {out} is {'in' if inside else 'a file of'} the model bundle {bundle} this run "
                          "reads, whose files it would overwrite: write elsewhere")


def table_folder(out: str) -> Path | None:
    """The folder a table's paths are written relative to (engine.batch.table_path): the --out
    file's, or None for stdout."""
    return None if out == "-" else Path(out).absolute().parent


def output_name(out: str) -> str:
    """How messages name an --out: "stdout" for '-', else the path."""
    return "stdout" if out == "-" else str(Path(out))


def open_row_writer(out: str, fmt: Format, fields: Sequence[str], stack: ExitStack) -> RowWriter:
    """The table's writer, closed with `stack`: Parquet to its file, or CSV / JSON lines to stdout or
    the --out file opened unbuffered (each file's rows reach the OS in one write)."""
    if out == "-":
        writer: RowWriter = TextRowWriter(sys.stdout, fields, fmt, output_name(out))
    else:
        if fmt == "parquet":  # before the file is emptied: a Ctrl-C in pyarrow's import left 0 bytes of it
            import pyarrow.parquet  # noqa: F401
        stream = stack.enter_context(open_exclusively(out))
        writer = ParquetRowWriter(stream, out, fields) if fmt == "parquet" else \
            TextRowWriter(stream, fields, fmt, output_name(out))
    stack.callback(writer.close)
    return writer


def open_exclusively(out: str) -> IO[bytes]:
    """`out` opened unbuffered for writing from its start, once no other process writes it (an
    exclusive lock, engine.files.open_locked): two `emolive score` runs into one file interleaved their rows
    with NUL runs, and both said they were done."""
    try:
        fd = open_locked(out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    if fd is None:
        raise OutputError(f"cannot write {out}: another process is writing it (another emolive score?); give "
                          "another --out")
    empty_if_regular(fd)
    return os.fdopen(fd, "wb", buffering=0)


def typed_values(row: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A row for a typed table (JSON lines, Parquet): a value a row lacks or holds as "" (an error row's
    estimates, a file without an error) is null, so each column keeps one type; CSV writes it as ""."""
    return {name: None if row.get(name, "") == "" else row[name] for name in fields}


class TextRowWriter:
    """CSV (with its header) or JSON lines on a binary stream, one write per file's rows."""

    def __init__(self, stream: IO, fields: Sequence[str], fmt: Literal["csv", "jsonl"], what: str) -> None:
        self._out, self._fields, self._fmt = LineWriter(stream, what), list(fields), fmt
        if fmt == "csv":
            self._out.write([csv_line(self._fields)])

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self._fmt == "csv":
            self._out.write([csv_line([row.get(name, "") for name in self._fields]) for row in rows])
        else:
            self._out.write([json.dumps(typed_values(row, self._fields)) for row in rows])

    def close(self) -> None:
        """The stream belongs to the caller."""


class ParquetRowWriter:
    """A Parquet file with typed columns: text for names, labels and errors, a float for every value
    (missing values of an error row are nulls, not empty strings), a bool for `speech`.

    A file that could not be written whole (a full disk) is removed: without its footer no row of it
    can be read, and an 8 kB file that pyarrow calls "magic bytes not found" was left where the
    results were expected."""

    def __init__(self, stream: IO[bytes], path: str, fields: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa, self._fields, self._path, self._stream = pa, list(fields), path, stream
        self._failed = False
        self._schema = pa.schema([(name, pa.string() if name in TEXT_COLUMNS else
                                   pa.bool_() if name == "speech" else pa.float64()) for name in self._fields])
        try:
            self._writer = pq.ParquetWriter(stream, self._schema)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc}") from None

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        # text as the text tables write it: a file name that is no UTF-8 (its bytes held as surrogates)
        # was a traceback that ended the batch
        rows = [{k: table_text(v) if isinstance(v, str) else v
                 for k, v in typed_values(row, self._fields).items()} for row in rows]
        if rows:
            try:
                self._writer.write_table(self._pa.Table.from_pylist(rows, schema=self._schema))
            except OSError as exc:  # a full disk: one line, as the text writers say it
                raise SinkError(f"cannot write {self._path}: {exc}{self._discard()}") from None

    def close(self) -> None:
        if self._failed:
            return
        try:
            self._writer.close()
        except OSError as exc:
            raise SinkError(f"cannot finish {self._path}: {exc}{self._discard()}") from None

    def _discard(self) -> str:
        """Remove the unreadable file (a regular one: /dev/full or a FIFO is left be); what to add to the error.
        An --out that is a link is emptied where it leads, not unlinked: the link went, the damage stayed."""
        self._failed = True
        fd = self._stream.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        if os.path.islink(self._path):
            os.ftruncate(fd, 0)
            return "; emptied it, since a Parquet file holds no readable row without its footer"
        os.unlink(self._path)
        return "; removed it, since a Parquet file holds no readable row without its footer"
