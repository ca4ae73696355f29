"""Reading files nobody vouches for (a downloaded bundle, a manifest's audio, a table), bounded;
writing files whole.

One reader for all of them, so none can forget a check: opened non-blocking (a FIFO cannot hang
the open), checked on its descriptor before a byte is read (a folder, a device or a file over the
bound is refused unread), and read with the memory it needs. One writer (`write_whole`) for every
file emolive replaces: exported graphs, screenshots, the trainer's caches and checkpoints.
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

GROWTH_READ = 1 << 20  # a file growing while it is read is read on in pieces of at most this many bytes
PARTIAL_PREFIX = ".{name}.partial-"  # write_whole's file in the making, before its random suffix


def is_within(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether `path` is `folder` or inside it, links followed (a dangling one's target included): what
    writing a bundle, which replaces its folder whole, would delete, or a file of a bundle a run reads."""
    whole = os.path.realpath(folder)
    return os.path.commonpath([os.path.realpath(path), whole]) == whole


def open_locked(path: str | Path) -> int | None:
    """`path` opened write-only (made where missing, not emptied) with an exclusive advisory lock for as
    long as the descriptor stays open (the kernel lets it go when the process ends, however it ends);
    None, nothing left open, where another process holds the lock. A file system that keeps no locks
    (some network mounts) gives the descriptor unlocked: the caller goes on as it did without locks.
    OSError where the file cannot be opened."""
    import fcntl

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        pass
    return fd


def empty_if_regular(fd: int) -> None:
    """Empty the file open as `fd` once it is ours (locked): a regular file only; /dev/full or a FIFO
    has nothing to empty."""
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.ftruncate(fd, 0)


class RefusedFile(Exception):
    """Why `read_bounded` read no file: one clause, which its caller words as its own layer's error."""


def read_bounded(path: str | Path, limit: int, follow_links: bool = True) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes: the one reader of
    untrusted files (bundle files, audio files, tables), raising RefusedFile or OSError.

    Opened non-blocking, so a FIFO cannot hang the open; what the open gave is checked (fstat on
    its descriptor) before a byte is read, so a folder, a device (/dev/zero) or a file over the
    limit is refused unread. The read asks for the size fstat gave and one byte more, never for
    `limit`: Python allocates what a read asks for first (a 37 kB file read with a 4 GiB limit
    cost 4 GiB). A file that grew since is read on in pieces up to one byte past the limit.
    """
    nofollow = 0 if follow_links else getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | nofollow)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile("not a regular file")
        if info.st_size > limit:
            raise RefusedFile(f"{info.st_size} bytes, more than the {limit} it may have")
        data = _read_on(fd, info.st_size, limit)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise RefusedFile(f"grew past {limit} bytes while being read")
    return data


def _read_on(fd: int, size: int, limit: int) -> bytes:
    """`size` bytes and one more; if that one came (the file grew), on to its end or one byte past `limit`."""
    with os.fdopen(fd, "rb", closefd=False) as f:
        parts = [f.read(size + 1)]
        total = len(parts[0])
        while size < total <= limit:
            part = f.read(min(GROWTH_READ, limit + 1 - total))
            if not part:
                break
            parts.append(part)
            total += len(part)
    return b"".join(parts)


def write_whole(path: Path, data: bytes, sync: bool = False) -> None:
    """`data` written to a new hidden file beside `path`, then renamed onto it, so a crash or a kill
    leaves the old file or the new one, never a truncated one a later reader takes for whole. The
    new file is made exclusively and never through a link (O_EXCL | O_NOFOLLOW under a random name:
    nobody can plant a link there for the write to follow) with the umask's mode. `sync`: its bytes on
    the disk before the rename (a checkpoint or a bundle file, which a power cut must not take).
    OSError where it cannot be written, its partial file removed (a full disk left one per run)."""
    partial = path.with_name(f"{PARTIAL_PREFIX.format(name=path.name)}{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def leftover_partials(path: Path) -> list[Path]:
    """The partial files `write_whole` left beside `path` when its process was killed mid-write (SIGKILL
    runs no cleanup). Only a caller that knows no other process writes `path` now (it holds a lock)
    may remove them."""
    return list(path.parent.glob(f"{PARTIAL_PREFIX.format(name=path.name)}*"))
