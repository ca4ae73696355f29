"""File names in tables: how a score table (and `to_dataframe`) writes them, and how a manifest's path
cell finds its file again.

A name is bytes to the OS. A table writes those bytes as UTF-8 text whatever the locale, a byte that is
not UTF-8 as `\\xNN` and a backslash as `\\\\`, so the text goes back to one name only. The same file
had been written `ü`, `Ã¼` or `\\udcc3\\udcbc` by runs in three locales, a name that was no UTF-8 could
not be read back, and one holding a backslash could be read back as another file.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

_ESCAPE = re.compile(rb"\\(\\|x[89a-fA-F][0-9a-fA-F])")  # what name_text writes: a backslash, a byte >= 0x80


def name_text(path: str) -> str:
    """How a table writes `path` (a name as this process has it from the OS)."""
    return os.fsencode(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def table_text(text: str) -> str:
    """Other text of a table (an error naming a file): a name's bytes that are not UTF-8, which Python
    holds as surrogates, as `\\xNN` (a strict JSON or Arrow reader refuses a lone surrogate)."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name gives
        return text.encode("utf-8", "backslashreplace").decode()


def shell_text(words: list[str]) -> str:
    """A command line as text a shell runs again: each word quoted (shlex), and one holding bytes that are
    no UTF-8 as $'...' with \\xNN (bash, zsh, POSIX since 2024): shlex kept their surrogates, which a
    report wrote as the literal text \\udcNN, another name once pasted."""
    return " ".join(shlex.quote(word) if _is_utf8(word) else _dollar_quoted(word) for word in words)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dollar_quoted(word: str) -> str:
    raw = os.fsencode(word)
    return "$'" + "".join(chr(b) if 0x20 <= b < 0x7f and b not in b"\\'" else f"\\x{b:02x}" for b in raw) + "'"


def named_file(folder: Path, cell: str) -> Path:
    """The file a path cell names, relative to the table's `folder`: the name `name_text` wrote it as;
    else the cell as written; else what it plainly means: without spaces around it (a spreadsheet's
    stray space), with Windows' backslashes read as separators (a manifest written on Windows). Else as
    written, and reading the clip says it is missing."""
    written = folder / cell
    unescaped = folder / os.fsdecode(_ESCAPE.sub(lambda m: b"\\" if m[1] == b"\\" else bytes([int(m[1][1:], 16)]),
                                                 cell.encode("utf-8", "surrogateescape")))
    cell = cell.strip()
    for meant in (unescaped, written, folder / cell, folder / cell.replace("\\", "/")):
        if os.path.exists(meant):
            return meant
    return written
