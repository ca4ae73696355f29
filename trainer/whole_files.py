"""Whole files or none: the trainer's caches, teacher targets and checkpoints reach their place by rename."""
from __future__ import annotations

import os
from pathlib import Path

from emolive.trainer.errors import TrainerError


def replace_whole(path: Path, data: bytes, what: str, sync: bool = False) -> None:
    """`data` written to `<name>.<pid>.tmp` beside `path`, then renamed onto it, so a crash or kill leaves
    the old file or the new one, never a truncated one a later run would read. A write that fails (a
    full disk) removes its temporary file and is one TrainerError naming `what` and the place: it was
    a traceback, and each run left one more temporary file. `sync`: on the disk before the rename (a
    checkpoint, which a power cut must not take with the run). Files get the umask's mode (open(), not
    safetensors' save_file, which makes 0600 files)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise TrainerError(f"cannot write {what} {path}: {err.strerror or err}") from None
