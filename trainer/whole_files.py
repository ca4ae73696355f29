"""Whole files or none: the trainer's caches, teacher targets and checkpoints reach their place by rename."""
from __future__ import annotations

from pathlib import Path

from emolive.engine.files import write_whole
from emolive.trainer.errors import TrainerError


def replace_whole(path: Path, data: bytes, what: str, sync: bool = False) -> None:
    """`data` as the file `path`, whole (engine.files.write_whole: a crash or kill leaves the old file
    or the new one, never a truncated one a later run would read). A write that fails (a full disk)
    is one TrainerError naming `what` and the place: it was a traceback. `sync`: on the disk before
    the rename (a checkpoint, which a power cut must not take with the run)."""
    try:
        write_whole(path, data, sync)
    except OSError as err:
        raise TrainerError(f"cannot write {what} {path}: {err.strerror or err}") from None
