"""CSV tables people make (manifests, label tables, score tables read back), read as numbered rows.

A table comes from people and their spreadsheets, so every way it can be malformed is one error
line naming the file and line: not readable, not UTF-8 (the byte's line), a missing required
column, a row with more or fewer fields than the header. A UTF-8 byte-order mark (what Excel
writes in "CSV UTF-8") is accepted and dropped, and so is what spreadsheets and hands put
between fields: a semicolon (Excel where the comma is the decimal mark) or a tab (.tsv) where
the header line holds no comma, and spaces after the separator. The engine (`emolive score`'s
manifests) and the trainer (its label tables) read them alike, each raising its own error class.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from emolive.engine.errors import EmoliveError
from emolive.engine.files import RefusedFile, read_bounded

MAX_TABLE_BYTES = 1 << 30  # 1 GiB: MSP-Podcast's labels are ~10 MB; a table this big is not one
# field separators, in the order they are looked for in the header line
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def read_text(path: Path, what: str, error: type[EmoliveError]) -> str:
    """The file as text: UTF-8, with or without a byte-order mark; anything else is `error`
    naming the line (`what` names the kind of table in the advice)."""
    try:
        data = read_bounded(path, MAX_TABLE_BYTES)
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    except RefusedFile as err:  # a FIFO named m.csv would have hung the read, /dev/zero filled memory
        raise error(f"{path}: cannot read the {what} ({err})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise error(f"{path}:{line}: byte 0x{data[err.start]:02x} is not UTF-8; save the {what} as "
                    f"UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet)") from None


def csv_rows(path: Path, required: tuple[str, ...], what: str, error: type[EmoliveError],
             optional: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; a missing required column is `error` up front.

    The `required` and `optional` columns are found whatever their case and the spaces around them
    ("Path", " Valence ") and keyed as spelled here: a "Valence" column was otherwise ignored as
    another column, its ratings silently replaced. Every row has exactly the header's fields (a value
    holding the separator must be quoted); blank lines are skipped. The line number is the row's last
    line in the file.
    """
    text = read_text(path, what, error)
    sep = separator(text)
    # strict: a quote left open on the last row read the rest of the file as one value, without a word
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True, strict=True)
    try:
        header = reader.fieldnames = known_names(reader.fieldnames or [], (*required, *optional), path, error)
        missing = [c for c in required if c not in header]
        if missing:
            raise error(f"{path}: missing column(s) {', '.join(missing)}; a {what} needs {', '.join(required)} "
                        f"(found {', '.join(header) or 'no header'})")
        for row in reader:
            if None in row or None in row.values():
                fields = len(header) + len(row.get(None, ())) - sum(v is None for v in row.values())
                spans = any("\n" in v for v in (*row.get(None, ()), *row.values()) if isinstance(v, str))
                raise error(f"{path}:{reader.line_num}: {fields} field(s), the header has {len(header)}; " + (
                    "a quoted value runs over several lines up to here: is a quote left open on a line above?"
                    if spans else f"quote a value that holds a {SEPARATOR_NAMES[sep]}"))
            yield reader.line_num, row
    except csv.Error as err:  # the reader counts a line once it has parsed it: the failing one is the next
        if str(err) == "unexpected end of data":  # strict's word for a quoted value still open at the end
            raise error(f"{path}:{reader.line_num + 1}: a quote opened in this row is never closed (the rest of "
                        "the file would be one value)") from None
        raise error(f"{path}:{reader.line_num + 1}: not a CSV row ({err})") from None


def separator(text: str) -> str:
    """The table's field separator: a comma, unless its header line has none and has a semicolon or a tab."""
    header = text.split("\n", 1)[0]
    return next((sep for sep in SEPARATOR_NAMES if sep in header), ",")


# other names of a column's field: "arousal" is the field's more common name (the NRC VAD lexicon's
# column, many corpora's), and was ignored as an unknown column, leaving a model without activation labels
COLUMN_ALIASES = {"arousal": "activation"}


def known_names(header: list[str], known: tuple[str, ...], path: Path, error: type[EmoliveError]) -> list[str]:
    """The header with each column that is one of `known` in another case or with spaces, or by another
    name of the field (COLUMN_ALIASES), spelled as `known` spells it; two columns that would share a
    name are `error`."""
    spelling = {name.lower(): name for name in known}
    spelling.update({alias: name for alias, name in COLUMN_ALIASES.items() if name in known})
    names = [spelling.get(column.strip().lower(), column) for column in header]
    twice = sorted({name for name in names if name in known and names.count(name) > 1})
    if twice:
        raise error(f"{path}: more than one column reads as {', '.join(twice)} "
                    f"(found {', '.join(header)}); keep one")
    return names
