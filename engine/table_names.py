"""File names in tables: how a score table writes them, and how a manifest's path cell finds its file.

A name is bytes to the OS. A table writes those bytes as UTF-8 text, any byte that is not UTF-8 as
`\\xNN`, whatever the locale: the same file had been written `names/ü.flac`, `names/Ã¼.flac` or
`names/\\udcc3\\udcbc.flac` by runs in three locales, and a name that was no UTF-8 could not be read
back, so a table was no manifest again for it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def name_text(path: str) -> str:
    """How a table writes `path` (a name as this process has it from the OS)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def named_file(folder: Path, cell: str) -> Path:
    """The file a path cell names, relative to the table's `folder`: as written where that is a file;
    else the file it plainly means: without spaces around it (a spreadsheet's stray space), with
    Windows' backslashes read as separators (a manifest written on Windows), or with `\\xNN` read
    back as the byte `name_text` wrote. Else as written, and reading the clip says it is missing."""
    written = folder / cell
    if os.path.exists(written):
        return written
    cell = cell.strip()
    for meant in (cell.replace("\\", "/"), os.fsdecode(_ESCAPED_BYTE.sub(lambda m: bytes([int(m[1], 16)]),
                                                                         cell.encode("utf-8", "surrogateescape")))):
        if os.path.exists(folder / meant):
            return folder / meant
    return written
