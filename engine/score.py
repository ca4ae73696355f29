"""`emolive score`: batch scoring of files, folders and manifests into one CSV, JSON lines or Parquet table."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from contextlib import ExitStack

from emolive.engine.console import ENDING_SIGNALS, Terminated, bar_disabled, terminate_as_interrupt
from emolive.engine.defaults import DEFAULT_HOP_S, DEFAULT_MODEL, DEFAULT_WINDOW_S, SCORE_PER
from emolive.engine.session import channel_number

log = logging.getLogger(__name__)


def add_parser(commands: argparse._SubParsersAction) -> None:
    score = commands.add_parser(
        "score", help="score recordings into a CSV, JSON lines or Parquet table",
        description="Score audio files, folders (searched recursively for audio files) or manifest CSVs "
                    "(a 'path' column) into one table: one row per file, or per window or speech turn with "
                    "--per. A file that cannot be read gets a row with its error and the batch goes on; "
                    "rows are written as files finish, so Ctrl-C keeps every complete row.")
    score.add_argument("paths", nargs="+", metavar="PATH", help="audio file, folder or manifest CSV")
    score.add_argument("--out", default="-", help="output .csv, .jsonl or .parquet file ('-': CSV on stdout)")
    score.add_argument("--per", choices=SCORE_PER, default="file",
                       help="one row per file (one estimate over the whole recording), window or speech turn")
    score.add_argument("--jobs", type=positive_int, default=1, help="files scored in parallel, one process each")
    score.add_argument("--model", default=DEFAULT_MODEL, help="model name (see `emolive models`) or bundle directory")
    score.add_argument("--window", type=float, default=DEFAULT_WINDOW_S,
                       help="window length in seconds: --per window's rows, and the file row's mean_* columns")
    score.add_argument("--hop", type=float, default=DEFAULT_HOP_S,
                       help="seconds between windows: --per window's rows, and the file row's mean_* columns")
    score.add_argument("--channel", type=channel_number, action="append", metavar="N",
                       help="1-based channel of every file to score; repeat to mix several (default: all mixed)")
    score.set_defaults(command=cmd_score)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


def cmd_score(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # here, not at import: `emolive --help` stays fast

    from emolive.engine.batch import (ScoreOptions, check_windows, check_workers_can_start, collect_inputs, columns,
                                      score_all)
    from emolive.engine.row_writers import (check_not_an_input, check_not_in_bundle, format_of, open_row_writer,
                                            table_folder)
    from emolive.engine.session import load_model_one_thread
    from emolive.engine.sources.base import distinct_channels

    fmt = format_of(args.out)
    check_not_an_input(args.out, args.paths)
    paths = collect_inputs(args.paths)
    jobs = min(args.jobs, os.cpu_count() or 1, len(paths))
    if jobs < args.jobs:
        log.warning("--jobs %d: using %d (one process per CPU here, at most one per file)", args.jobs, jobs)
    if jobs > 1:  # before --out is emptied: a run whose workers cannot start had left only its header
        check_workers_can_start(jobs)
    options = ScoreOptions(model=args.model, window=args.window, hop=args.hop, per=args.per,
                           channels=distinct_channels(tuple(args.channel or ()), "--channel"))
    plugin = load_model_one_thread(args.model)
    check_not_in_bundle(args.out, plugin)
    check_windows(options, plugin)
    started, failed, done = time.monotonic(), 0, 0
    with ExitStack() as stack:
        signalled = stack.enter_context(terminate_as_interrupt((signal.SIGINT, *ENDING_SIGNALS)))
        try:  # the opening too: a FIFO --out waits for its reader, and a signal there ended without a word
            writer = open_row_writer(args.out, fmt, columns(plugin.meta.class_names, args.per), stack)
            # a bar on a terminal only; -q turns it off everywhere
            bar = stack.enter_context(tqdm(total=len(paths), unit="file", file=sys.stderr, dynamic_ncols=True,
                                           disable=bar_disabled(log.isEnabledFor(logging.INFO))))
            for rows in score_all(paths, plugin, options, jobs, table_folder(args.out)):
                writer.write(rows)
                done += 1
                failed += any(row["error"] for row in rows)
                bar.update()
                signalled.check()  # a signal whose exception a finaliser swallowed ends the batch here
        except Terminated as ended:  # SIGTERM 143, SIGHUP (its terminal closed) 129
            log.warning("terminated: %d of %d files scored; their rows are in %s", done, len(paths), _where(args))
            return 128 + ended.signum
        except KeyboardInterrupt:
            log.warning("interrupted: %d of %d files scored; their rows are in %s", done, len(paths), _where(args))
            return 130
    elapsed = time.monotonic() - started
    log.info("scored %d file%s in %.1f s (%.2f files/s)", done, "" if done == 1 else "s", elapsed,
             done / elapsed if elapsed else 0.0)
    if failed:  # the table is whole, but a script must be able to tell that some of it is errors
        log.warning("%d of %d files could not be scored: see the error column in %s", failed, done, _where(args))
        return 1
    return 0


def _where(args: argparse.Namespace) -> str:
    from emolive.engine.row_writers import output_name

    return output_name(args.out)
