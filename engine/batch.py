"""Batch scoring: many recordings in, one table out (`emolive score`).

Inputs are files, folders (searched recursively for audio and audio-video file extensions) or manifest
CSVs (a `path` column, relative to the CSV's folder, as the corpora and the trainer use). Each
file runs through `emolive.analyze`, the live path, so a score is what a stream would say.

A file that cannot be read becomes one row with its `error` filled and the batch goes on; rows
are written and flushed file by file, so an interrupted batch keeps every complete row.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any, Literal


from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_WINDOW_S
from emolive.engine.errors import EmoliveError
from emolive.engine.plugin import ModelPlugin
from emolive.engine.schema import DIMENSIONS
from emolive.engine.session import load_model_one_thread
from emolive.engine.sinks.csv_sink import CLASS_PREFIX
from emolive.engine.sinks.lines import LineWriter
from emolive.engine.sources.decoders import AUDIO_EXTENSIONS

Per = Literal["window", "turn", "file"]
VALUE_FIELDS = ("start", "end", *DIMENSIONS, "speech", "voiced_ratio")


class BatchError(EmoliveError):
    """An input list or output the user can fix: a manifest without a path column, an unknown extension."""


@dataclass(frozen=True)
class ScoreOptions:
    """What every file is scored with; it travels to worker processes whole."""

    model: str = "student"
    window: float = DEFAULT_WINDOW_S
    hop: float = DEFAULT_HOP_S
    per: Per = "file"


def collect_inputs(specs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, folders' audio files (recursive, sorted, every entry with an audio extension
    that is not a folder), manifests' paths, in the order named.

    A named file that does not exist stays in the list: it gets an error row like any unreadable file.
    """
    paths: list[Path] = []
    for spec in map(Path, specs):
        if spec.is_dir():
            # a FIFO or a dangling link with an audio name is listed too: it gets a row saying why it was not read
            paths += sorted(p for p in spec.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not p.is_dir())
        elif spec.suffix.lower() == ".csv":
            paths += manifest_paths(spec)
        else:
            paths.append(spec)
    return paths


def manifest_paths(manifest: Path) -> list[Path]:
    """The `path` column of a manifest CSV, relative to the manifest's folder."""
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise BatchError(f"{manifest}: a manifest needs a 'path' column (found {reader.fieldnames})")
            return [manifest.parent / row["path"] for row in reader]
    except FileNotFoundError:
        raise BatchError(f"manifest not found: {manifest}") from None


def columns(class_names: Sequence[str]) -> list[str]:
    """The table's columns: path, the values, one p_<class> per class, and error (empty when scored)."""
    return ["path", *VALUE_FIELDS, *(CLASS_PREFIX + name for name in class_names), "error"]


def score_file(path: Path, plugin: ModelPlugin, options: ScoreOptions) -> list[dict[str, Any]]:
    """Rows for one file; an error the user can fix (unreadable, damaged, empty) is one row saying so."""
    from emolive.api import PartialAnalysis, analyze  # the API sits above the engine; imported where it is used

    error = ""
    try:
        analysis = analyze(path, model=plugin, window=options.window, hop=options.hop)
    except PartialAnalysis as exc:  # damaged part way: the rows of what was read, each naming the damage
        analysis, error = exc.analysis, " ".join(str(exc).split())
    except EmoliveError as exc:
        return [{"path": str(path), "error": " ".join(str(exc).split())}]
    if analysis.whole is None:
        return [{"path": str(path), "error": "shorter than one 25 ms frame"}]
    rows = analysis.to_records(options.per)
    return [{"path": str(path), **{name: row[name] for name in row if name in VALUE_FIELDS or
                                   name.startswith(CLASS_PREFIX)}, "error": error} for row in rows]


class RowWriter:
    """CSV or JSON lines by the output's extension; each file's rows go to the OS in one write
    (engine.sinks.lines.LineWriter): on a full disk, /dev/full or a closed pipe the output keeps
    whole rows only and the failure is one SinkError line."""

    def __init__(self, stream: IO, fields: Sequence[str], fmt: Literal["csv", "jsonl"], what: str) -> None:
        self._out, self._fields, self._fmt = LineWriter(stream, what), list(fields), fmt
        if fmt == "csv":
            self._out.write([self._csv_text([dict(zip(self._fields, self._fields))])])

    @staticmethod
    def format_of(path: str | None) -> Literal["csv", "jsonl"]:
        if path is None or path == "-" or path.lower().endswith(".csv"):
            return "csv"
        if path.lower().endswith((".jsonl", ".ndjson")):
            return "jsonl"
        raise BatchError(f"--out {path}: give a .csv or .jsonl file name")

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self._fmt == "csv":
            self._out.write([self._csv_text(rows)])
        else:
            self._out.write([json.dumps({name: row.get(name, "") for name in self._fields}) for row in rows])

    def _csv_text(self, rows: list[dict[str, Any]]) -> str:
        """The rows as CSV text without the last newline (LineWriter adds it); a field holding a
        line break is quoted, so the text stays whole rows."""
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self._fields, lineterminator="\n", restval="").writerows(rows)
        return buffer.getvalue()[:-1]


def score_all(paths: Sequence[Path], plugin: ModelPlugin, options: ScoreOptions,
              jobs: int) -> Iterator[list[dict[str, Any]]]:
    """Each file's rows, in input order; `jobs` > 1 scores in that many processes, each loading
    `options.model` itself (`plugin` is the one this process scores with when jobs is 1)."""
    if jobs <= 1:
        for path in paths:
            yield score_file(path, plugin, options)
        return
    # spawn: a fresh interpreter per worker, never a fork of this one's torch/numba thread state
    with get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(options,)) as pool:
        try:
            yield from pool.imap(_score_in_worker, paths)
        except BaseException:
            pool.terminate()  # Ctrl-C or a failing consumer: no worker goes on writing into the void
            raise


_worker: tuple[ModelPlugin, ScoreOptions] | None = None


def _init_worker(options: ScoreOptions) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _worker = (load_model_one_thread(options.model), options)


def _score_in_worker(path: Path) -> list[dict[str, Any]]:
    assert _worker is not None, "pool initializer did not run"
    return score_file(path, *_worker)
