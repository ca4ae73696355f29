"""Generic manifest CSV adapter (the format of the shared corpora and of user-supplied data)."""
from __future__ import annotations

import logging
import math
from pathlib import Path

from emolive.engine.schema import DIMENSIONS, SCALE
from emolive.engine.table_names import name_text, named_file
from emolive.trainer.data.splits import split_name
from emolive.trainer.data.table import csv_rows
from emolive.trainer.data.utterance import Utterance, without_duplicates
from emolive.trainer.classes import NO_CATEGORY
from emolive.trainer.data.vad import INTENSITY_WEIGHT, UNLABELLED, canonical_emotion, category_points, vad_targets
from emolive.trainer.errors import TrainerError

log = logging.getLogger(__name__)
# (manifest, emotion) already warned about in this process: a report reads each manifest twice (pooled,
# then alone), and said so twice
_WARNED: set[tuple[Path, str]] = set()

REQUIRED = ("path", "speaker", "emotion")
OPTIONAL = ("intensity", *DIMENSIONS, "split")


def read_manifest(csv_path: str | Path, corpus: str | None = None) -> list[Utterance]:
    """Read a manifest: columns path, speaker, emotion, and optionally intensity,
    activation (or arousal), valence, dominance (1-7) and split (any case; dev, development and
    validation read as val: trainer.data.splits.split_name); other columns are ignored.

    Paths are relative to the CSV's folder. Labels may be partial: a dimension given in the row
    is used as is, a missing one comes from the VAD map by emotion and intensity, and one that
    neither gives stays unlabelled (NaN, masked in training and evaluation). An emotion the map
    does not know leaves the clip without map targets, and an intensity word the map's rule does
    not know (CREMA-D's "XX", a corpus's "mild") counts as unmarked: both are warned once per
    value, not errors, since a corpus's own vocabulary should not stop an evaluation. Speakers are namespaced as
    "<corpus>/<speaker>", the corpus defaulting to the CSV folder's name. A row that lists a clip
    again is dropped with a warning if it is a copy, an error if its labels differ
    (utterance.without_duplicates); trainer.data.table says what else is an error.
    """
    csv_path = Path(csv_path)
    # as tables write a name (engine.table_names): a folder name's bytes that are not UTF-8 as \xNN, so its
    # speakers' ids go into splits.csv, hashes and figures (they had ended training in a UnicodeEncodeError),
    # and a backslash as \\, so a folder whose name is that text is another corpus (their speakers had merged)
    corpus = corpus or name_text(csv_path.resolve().parent.name)
    utts = without_duplicates((f"{csv_path}:{line}", _row(row, csv_path, corpus, line))
                              for line, row in csv_rows(csv_path, REQUIRED, OPTIONAL))
    unknown = sorted({u.emotion for u in utts if u.emotion and u.emotion not in category_points()
                      and u.emotion not in NO_CATEGORY and (csv_path, u.emotion) not in _WARNED})
    _WARNED.update((csv_path, emotion) for emotion in unknown)
    if unknown:
        log.warning("%s: emotion(s) %s are not in the VAD map: those clips keep only the dimensions the "
                    "manifest gives", csv_path, ", ".join(unknown))
    levels = sorted({u.intensity for u in utts if u.intensity not in INTENSITY_WEIGHT})
    if levels:
        log.warning("%s: intensity value(s) %s are not among %s: those clips take their category's lexicon "
                    "point, as unmarked ones do", csv_path, ", ".join(map(repr, levels)),
                    ", ".join(repr(k) for k in INTENSITY_WEIGHT if k))
    return utts


def _row(row: dict[str, str], csv_path: Path, corpus: str, line: int) -> Utterance:
    empty = [k for k in ("path", "speaker") if not row[k].strip()]
    if empty:
        raise TrainerError(f"{csv_path}:{line}: empty {' and '.join(empty)}; every clip needs its file and speaker")
    intensity = (row.get("intensity") or "").strip().lower()
    emotion = canonical_emotion(row.get("emotion") or "")
    given = [(row.get(k) or "").strip() for k in DIMENSIONS]
    try:
        rule = intensity if intensity in INTENSITY_WEIGHT else ""
        mapped = vad_targets(emotion, rule) if emotion in category_points() or not emotion else UNLABELLED
        avd = tuple(dimension(v, name) if v else m for v, m, name in zip(given, mapped, DIMENSIONS))
    except TrainerError as err:
        raise TrainerError(f"{csv_path}:{line}: {err}") from err
    return Utterance(
        path=named_file(csv_path.parent, row["path"]),
        speaker=f"{corpus}/{row['speaker'].strip()}",
        emotion=emotion,
        intensity=intensity,
        activation=avd[0],
        valence=avd[1],
        dominance=avd[2],
        split=split_name(row.get("split") or ""),
    )


def dimension(text: str, name: str) -> float:
    """A rating on the 1-7 scale from a table cell, its decimal mark a point or a comma (one comma
    and no point: "4,5" from a spreadsheet where the comma is the decimal mark, which writes its
    fields apart with semicolons); anything else is a TrainerError."""
    decimal_comma = text.count(",") == 1 and "." not in text
    try:
        value = float(text.replace(",", ".") if decimal_comma else text)
    except ValueError:
        raise TrainerError(f"{name} {text!r} is not a number") from None
    if math.isnan(value):
        raise TrainerError(f"{name} {text!r} is not a number; leave the cell empty for a clip without the rating")
    if not SCALE[0] <= value <= SCALE[1]:
        raise TrainerError(f"{name} {value:g} is outside the 1-7 scale: map ratings of another scale onto it first "
                           f"(0 to 1: 1 + 6x; -1 to 1: 4 + 3x; 1 to 5: 1 + 1.5 (x - 1))")
    return value
