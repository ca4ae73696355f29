"""Batch scoring: many recordings in, one table out (`emolive score`).

Inputs are files, folders (searched recursively for audio and audio-video file extensions) or manifest
CSVs (a `path` column, relative to the CSV's folder, as the corpora and the trainer use). Each
file runs through engine.analysis, the live path, so a score is what a stream would say; the same
batch serves `emolive.analyze` given many files.

A file that cannot be read becomes one row with its `error` filled and the batch goes on (the
writers in engine.row_writers keep every complete row of an interrupted batch).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import current_process, get_context
from pathlib import Path
from typing import Any

from emolive.engine import console
from emolive.engine.analysis import Analysis, PartialAnalysis, Per, analyze_input, table_columns
from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_MODEL, DEFAULT_WINDOW_S
from emolive.engine.errors import EmoliveError
from emolive.engine.narrowband import narrowband_note
from emolive.engine.plugin import ModelPlugin
from emolive.engine.session import load_model_one_thread
from emolive.engine.sources.decoders import AUDIO_EXTENSIONS
from emolive.engine.sources.trim import SpanError
from emolive.engine.table_names import name_text, named_file, table_text
from emolive.engine.tables import csv_rows
from emolive.engine.windows import WindowError, WindowSpec

log = logging.getLogger(__name__)


class BatchError(EmoliveError):
    """An input list the user can fix: a manifest without a path column, unreadable or malformed,
    workers without a model name."""


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
    channels: tuple[int, ...] = ()  # 1-based channels of every file mixed (all where empty)

    @property
    def rows(self) -> Per | None:
        """What analyze_input keeps: everything, or only the rows of the table (bounded memory per file)."""
        return None if self.keep_all else self.per


def collect_inputs(specs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, folders' audio files (recursive, sorted, every entry with an audio extension
    that is not a folder), manifests' paths, in the order named.

    A named file that does not exist stays in the list: it gets an error row like any unreadable file.
    Finding no file at all is an error naming what was searched.
    """
    paths: list[Path] = []
    for spec in map(Path, specs):
        if is_folder(spec):
            paths += folder_audio(spec)
        elif spec.suffix.lower() == ".csv":
            paths += manifest_paths(spec)
        else:
            paths.append(spec)
    if not paths:
        raise BatchError(f"no audio files found in {' '.join(map(os.fspath, specs))}")
    return paths


def folder_audio(folder: Path) -> list[Path]:
    """Every entry under `folder` with an audio extension that is not a folder, sorted. Linked folders
    are searched too (a corpus assembled from links to sessions kept elsewhere), each real folder once,
    so a link back up the tree ends. A FIFO or a dangling link with an audio name is listed: it gets a
    row saying why it was not read, and so does a folder that cannot be searched (its files had gone
    missing from the table, with exit status 0). The search keeps its own list of folders to visit: Python 3.11's
    os.walk recurses, and a tree 1,000 folders deep ended in a RecursionError without a row."""
    found, seen, pending = [], set(), [folder]
    while pending:
        current = pending.pop()
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(current))
        except OSError:  # a folder that cannot be listed: its files cannot be named, so it has the row
            found.append(Path(current))
            continue
        for entry in entries:
            if is_folder(entry):  # follows links, as a linked session folder should be
                pending.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in AUDIO_EXTENSIONS:
                found.append(Path(entry.path))
    return sorted(found)


def is_folder(path: Path | os.DirEntry) -> bool:
    """Whether `path` is a folder, links followed; False where that cannot be known: Python 3.11 raises
    for a link loop, a name over 255 bytes or a folder that cannot be searched, and each ended a batch
    with a traceback. Such a path with an audio name is listed, and its row says why it was not read."""
    try:
        return path.is_dir()
    except OSError:
        return False


def manifest_paths(manifest: Path) -> list[Path]:
    """The `path` column of a manifest CSV, relative to the manifest's folder (an absolute path stays
    as it is), read as the trainer reads its manifests (trainer/data/table.py): UTF-8 with or without
    a byte-order mark, each malformed row one line naming its line."""
    paths = []
    for line, row in csv_rows(manifest, ("path",), "manifest", BatchError):
        if not row["path"].strip():
            raise BatchError(f"{manifest}:{line}: the path is empty")
        paths.append(named_file(manifest.parent, row["path"]))  # as the trainer finds it
    return paths


def check_windows(options: ScoreOptions, plugin: ModelPlugin) -> None:
    """Window and hop that fit no file fail the batch once, before any row: per file they were
    every file's error and an exit status of success."""
    WindowSpec.from_seconds(options.window, options.hop, plugin.meta.frontend)


def analyze_file(path: Path, plugin: ModelPlugin, options: ScoreOptions) -> Analysis:
    """One file's analysis; an error of this file (unreadable, damaged, empty, failing under the
    decoder with an OSError, too long for the memory left) is in its `error`, beside the estimates of
    the audio read before it.
    Window or span options that fit no file raise: they are the batch's error, not this file's."""
    if is_folder(path):  # one folder_audio could not search
        try:
            os.scandir(path).close()
        except OSError as exc:
            return Analysis.of(plugin, str(path), f"cannot search folder {path}: {exc.strerror or exc}")
    try:
        return analyze_input(path, plugin, window=options.window, hop=options.hop, start=options.start,
                             end=options.end, rows=options.rows, warn_narrowband=False, channels=options.channels)
    except PartialAnalysis as exc:  # damaged part way: what was read, naming the damage
        return exc.analysis
    except (WindowError, SpanError):
        raise
    except EmoliveError as exc:
        return Analysis.of(plugin, str(path), " ".join(str(exc).split()))
    except OSError as exc:  # permissions, an I/O error: this file's row, never the end of the batch
        return Analysis.of(plugin, str(path), f"cannot read {path}: {exc.strerror or exc}")
    except MemoryError:  # a file too long for the memory left (ulimit -v): its row, and the next file is tried
        return Analysis.of(plugin, str(path), f"out of memory analysing {path}")


def file_rows(analysis: Analysis, per: Per, table_dir: Path | None = None) -> list[dict[str, Any]]:
    """The table rows of one file's analysis (Analysis.to_records, `file` as `path`), the path as
    `table_path` gives it for a table in `table_dir`, in the text of its bytes (engine.table_names)."""
    path = name_text(table_path(Path(analysis.file), table_dir))
    return [{**{k: table_text(v) if isinstance(v, str) else v for k, v in row.items()}, "path": path}
            for row in analysis.to_records(per)]


def columns(class_names: Sequence[str], per: Per) -> list[str]:
    """The columns of score's table: to_records' with `path` for `file`, the name that makes a score
    table a manifest `emolive score` and the trainer read back."""
    return ["path", *table_columns(class_names, per)[1:]]


def table_path(path: Path, table_dir: Path | None) -> str:
    """How a table in `table_dir` names `path` so that, read back as a manifest, it finds the file:
    an absolute path as it is, a relative one (to the current folder) made relative to the table's
    folder, or absolute where there is no such path (another drive); as given for a table on stdout
    (None), which has no folder. The folders are compared as they are on disk, so a `..` climbs out
    of a linked folder as the OS will; the file's own name is kept even when it is a link."""
    if table_dir is None or path.is_absolute():
        return str(path)
    folder = os.path.realpath(path.parent)
    try:
        return os.path.relpath(os.path.join(folder, path.name), os.path.realpath(table_dir))
    except ValueError:  # no relative path from table_dir's drive
        return os.path.join(folder, path.name)


def analyze_all(paths: Sequence[Path], plugin: ModelPlugin | None, options: ScoreOptions,
                jobs: int) -> Iterator[Analysis]:
    """Each file's analysis, in input order; `jobs` > 1 analyses in that many processes, each loading
    `options.model` itself (`plugin` is the one this process uses when jobs is 1, else unused). The
    first file recorded below 16 kHz is warned about (narrowband_note), and only it: a batch of
    telephone calls gets one warning, not one per call."""
    warned = False
    for analysis, note in _analyses(paths, plugin, options, jobs):
        if note and not warned:
            log.warning("%s (the batch's other files below 16 kHz are not named)", note)
            warned = True
        yield analysis


def _analyses(paths: Sequence[Path], plugin: ModelPlugin | None, options: ScoreOptions,
              jobs: int) -> Iterator[tuple[Analysis, str | None]]:
    """Each file's analysis and its narrowband note, made where the model is loaded."""
    if jobs <= 1:
        assert plugin is not None, "one job runs in this process: it needs the loaded plugin"
        for path in paths:
            yield noted_analysis(path, plugin, options)
        return
    check_not_importing_main()
    check_workers_can_start(jobs)
    # spawn: a fresh interpreter per worker, never a fork of this one's torch/numba thread state. An
    # executor, not a Pool: a Pool replaces a worker that dies as it starts, for ever (a script without
    # a main guard, a model that fails to load), where an executor says its pool is broken
    executor = ProcessPoolExecutor(jobs, get_context("spawn"), initializer=_init_worker,
                                   initargs=(options, console.configured()))
    # submit, not map: map cancels what is pending when it is left, and Python 3.11's executor then
    # fails in its own thread setting a stopped worker's error on a cancelled future
    futures = [executor.submit(_analyze_in_worker, path) for path in paths]
    try:
        for future in futures:
            yield future.result()
    except BrokenProcessPool:
        raise BatchError(f"the worker processes stopped before scoring every file; {why_stopped(executor)}") from None
    except BaseException:
        for process in list(executor._processes.values()):  # Python 3.14 has terminate_workers() for this
            process.terminate()  # Ctrl-C or a failing consumer: no worker goes on writing into the void
        raise
    finally:
        executor.shutdown()


STOPPED_WAIT_S = 5.0  # how long a broken pool's workers are waited for, to read how each ended
PR_SET_PDEATHSIG = 1  # prctl's option: a signal this process gets when its parent ends (linux/prctl.h)
GUARD_EXIT = 3  # a worker's exit code where it refused to run an unguarded script's call again
GUARD = ("a Python script that calls emolive.analyze with num_workers must make that call under `if __name__ == "
         "\"__main__\":`, because each worker process imports the script again")


def why_stopped(executor: ProcessPoolExecutor) -> str:
    """Why a pool broke, from its workers' exit codes: one killed by a signal (a crash, or the kernel out
    of memory), which a main guard would not have helped (a crash was blamed on a missing guard);
    else, where the program is a script, the refusal of a worker importing it unguarded (GUARD_EXIT,
    or a worker already gone from the pool's list: the advice stands where nothing says otherwise);
    else their errors above."""
    processes = list(executor._processes.values())
    for process in processes:  # the pool terminated the others as it broke: each ends within moments
        process.join(timeout=STOPPED_WAIT_S)
    codes = [process.exitcode for process in processes]
    killed = sorted({-code for code in codes if code is not None and code < 0 and -code != signal.SIGTERM})
    if killed:
        names = ", ".join(signal.Signals(number).name for number in killed)
        return f"a worker was killed by {names} (a crash in a decoder, or the machine out of memory)"
    if GUARD_EXIT in codes or getattr(sys.modules.get("__main__"), "__file__", None):
        return GUARD
    return "their errors are above"


def check_not_importing_main() -> None:
    """Refuse to start workers from a worker importing the script again: without a main guard, the
    script's own call would start workers of its own in each of them. The worker ends quietly
    (SystemExit prints no traceback): the caller's process names the cause (GUARD) once, where each
    worker's traceback had repeated it."""
    if getattr(current_process(), "_inheriting", False):  # multiprocessing's own mark of that import
        raise SystemExit(GUARD_EXIT)


def check_workers_can_start(jobs: int) -> None:
    """Worker processes that could never start are one BatchError saying why, before any is made: a
    daemonic process (a multiprocessing.Pool's worker) may not have children (a bare AssertionError
    came out of multiprocessing), and spawned workers import the main script again from its file,
    which a script read from standard input does not have (each failed, and the error then advised
    a main guard the script had)."""
    if current_process().daemon:
        raise BatchError(f"{jobs} worker processes cannot start inside a daemonic process (a multiprocessing.Pool's "
                         "worker): analyse there with one worker, or use a concurrent.futures.ProcessPoolExecutor, "
                         "whose workers may start their own")
    try:
        os.getcwd()
    except FileNotFoundError:  # each worker starts there: "[Errno 2] No such file or directory", nothing named
        raise BatchError(f"{jobs} worker processes cannot start in the current folder, which no longer exists "
                         "(deleted?): change to another folder, or analyse with one worker") from None
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if script is not None and not os.path.isfile(script):
        raise BatchError(f"worker processes import the main script again, and {script} is not a file (a script read "
                         "from standard input): save it to a file and run that, or analyse with one worker")


def noted_analysis(path: Path, plugin: ModelPlugin, options: ScoreOptions) -> tuple[Analysis, str | None]:
    """analyze_file and the file's narrowband note (None at 16 kHz or above): the note needs the
    model, which a worker process has and the batch's own may not."""
    started = time.perf_counter()
    analysis = analyze_file(path, plugin, options)
    if log.isEnabledFor(logging.DEBUG):
        audio_s = analysis.whole["end"] - analysis.whole["start"] if analysis.whole else 0.0
        log.debug("%s: %.2f s of audio in %.2f s%s", path, audio_s, time.perf_counter() - started,
                  f" ({analysis.error})" if analysis.error else "")
    return analysis, narrowband_note(analysis.file, analysis.input_rate, plugin)


def score_all(paths: Sequence[Path], plugin: ModelPlugin, options: ScoreOptions, jobs: int,
              table_dir: Path | None = None) -> Iterator[list[dict[str, Any]]]:
    """Each file's table rows, in input order (see analyze_all), paths written for a table in
    `table_dir` (see table_path)."""
    for analysis in analyze_all(paths, plugin, options, jobs):
        yield file_rows(analysis, options.per, table_dir)


_worker: tuple[ModelPlugin, ScoreOptions] | EmoliveError | None = None


def _init_worker(options: ScoreOptions, logging_as: tuple[str, int] | None = None) -> None:
    """A worker's model and options, and its logging as its parent's (`console.configured`). A model
    that does not load is kept as its error, raised for the first file: the caller gets its one line
    (a name mistyped, a broken bundle), where an initializer's exception broke the pool with a
    traceback per worker and a BatchError blaming a main guard the script had."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    die_with_parent()
    if logging_as is not None:
        console.configure(*logging_as)
    try:
        _worker = (load_model_one_thread(options.model), options)
    except EmoliveError as exc:
        _worker = exc


def die_with_parent() -> None:
    """End this worker when the process that started it ends, however it ends: SIGKILL of `emolive
    score --jobs 2` left its workers running for good (145 MB each, holding the caller's stdout open,
    so `$(emolive score ...)` never returned). Linux's parent-death signal where there is one, else a
    thread that watches the parent's pid."""
    parent = os.getppid()
    try:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
            if os.getppid() != parent:  # the parent ended before the request took effect
                os._exit(1)
            return
    except (OSError, AttributeError):  # no prctl here (macOS, Windows)
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="emolive-parent-watch", daemon=True).start()


def _analyze_in_worker(path: Path) -> tuple[Analysis, str | None]:
    assert _worker is not None, "pool initializer did not run"
    if isinstance(_worker, EmoliveError):
        raise _worker
    return noted_analysis(path, *_worker)
