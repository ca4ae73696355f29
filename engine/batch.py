"""Batch scoring: many recordings in, one table out (`emolive score`).

Inputs are files, folders (searched recursively for audio and audio-video file extensions) or manifest
CSVs (a `path` column, relative to the CSV's folder, as the corpora and the trainer use). Each
file runs through engine.analysis, the live path, so a score is what a stream would say; the same
batch serves `emolive.analyze` given many files.

A file that cannot be read becomes one row with its `error` filled and the batch goes on (the
writers in engine.row_writers keep every complete row of an interrupted batch).
"""
from __future__ import annotations

import csv
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from emolive.engine.analysis import MEAN_PREFIX, Analysis, PartialAnalysis, Per, analyze_input
from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_MODEL, DEFAULT_WINDOW_S
from emolive.engine.errors import EmoliveError
from emolive.engine.plugin import ModelPlugin
from emolive.engine.schema import DIMENSIONS
from emolive.engine.session import load_model_one_thread
from emolive.engine.sinks.csv_sink import CLASS_PREFIX
from emolive.engine.sources.decoders import AUDIO_EXTENSIONS

VALUE_FIELDS = ("start", "end", *DIMENSIONS)
FILE_FIELDS = tuple(MEAN_PREFIX + name for name in DIMENSIONS)  # a file row's speech-window means
TAIL_FIELDS = ("speech", "voiced_ratio", "label")


class BatchError(EmoliveError):
    """An input list the user can fix: a manifest without a path column or not there, workers without a model name."""


@dataclass(frozen=True)
class ScoreOptions:
    """What every file is scored with; it travels to worker processes whole."""

    model: str = DEFAULT_MODEL
    window: float = DEFAULT_WINDOW_S
    hop: float = DEFAULT_HOP_S
    per: Per = "file"
    start: float = 0.0
    end: float | None = None
    keep_all: bool = False  # the API's batch keeps every window and turn; a table only its `per` rows

    @property
    def rows(self) -> Per | None:
        """What analyze_input keeps: everything, or only the rows of the table (bounded memory per file)."""
        return None if self.keep_all else self.per


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


def columns(class_names: Sequence[str], per: Per) -> list[str]:
    """The table's columns: path, the values (a file row with its speech-window means), the top
    label, one p_<class> per class, the model's name, and error (empty when scored). The `path`
    column makes a score table a manifest `emolive score` and the trainer read back."""
    return ["path", *VALUE_FIELDS, *(FILE_FIELDS if per == "file" else ()), *TAIL_FIELDS,
            *(CLASS_PREFIX + name for name in class_names), "model", "error"]


def analyze_file(path: Path, plugin: ModelPlugin, options: ScoreOptions) -> Analysis:
    """One file's analysis; an error the user can fix (unreadable, damaged, empty) is in its `error`,
    beside the estimates of the audio read before it."""
    try:
        return analyze_input(path, plugin, window=options.window, hop=options.hop, start=options.start,
                             end=options.end, rows=options.rows)
    except PartialAnalysis as exc:  # damaged part way: what was read, naming the damage
        return exc.analysis
    except EmoliveError as exc:
        return Analysis(file=str(path), error=" ".join(str(exc).split()))


def file_rows(analysis: Analysis, per: Per, model: str) -> list[dict[str, Any]]:
    """The table rows of one file's analysis (none for `--per turn` without speech), or one row
    saying why it has no estimates."""
    if analysis.whole is None:
        return [{"path": analysis.file, "model": model, "error": analysis.error or "shorter than one 25 ms frame"}]
    return [{**row, "path": analysis.file, "error": analysis.error} for row in analysis.to_records(per)]


def analyze_all(paths: Sequence[Path], plugin: ModelPlugin | None, options: ScoreOptions,
                jobs: int) -> Iterator[Analysis]:
    """Each file's analysis, in input order; `jobs` > 1 analyses in that many processes, each loading
    `options.model` itself (`plugin` is the one this process uses when jobs is 1, else unused)."""
    if jobs <= 1:
        assert plugin is not None, "one job runs in this process: it needs the loaded plugin"
        for path in paths:
            yield analyze_file(path, plugin, options)
        return
    # spawn: a fresh interpreter per worker, never a fork of this one's torch/numba thread state
    with get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(options,)) as pool:
        try:
            yield from pool.imap(_analyze_in_worker, paths)
        except BaseException:
            pool.terminate()  # Ctrl-C or a failing consumer: no worker goes on writing into the void
            raise


def score_all(paths: Sequence[Path], plugin: ModelPlugin, options: ScoreOptions,
              jobs: int) -> Iterator[list[dict[str, Any]]]:
    """Each file's table rows, in input order (see analyze_all)."""
    for analysis in analyze_all(paths, plugin, options, jobs):
        yield file_rows(analysis, options.per, plugin.name)


_worker: tuple[ModelPlugin, ScoreOptions] | None = None


def _init_worker(options: ScoreOptions) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _worker = (load_model_one_thread(options.model), options)


def _analyze_in_worker(path: Path) -> Analysis:
    assert _worker is not None, "pool initializer did not run"
    return analyze_file(path, *_worker)
