"""MSP-Podcast adapter for the corpus's own layout: Labels/labels_consensus.csv and Audios/."""
from __future__ import annotations

import math
from pathlib import Path

from emolive.trainer.data.manifest import dimension
from emolive.trainer.data.splits import split_name
from emolive.trainer.data.table import csv_rows
from emolive.trainer.data.utterance import Utterance, without_duplicates
from emolive.trainer.errors import TrainerError

LABELS = Path("Labels") / "labels_consensus.csv"
AUDIO = Path("Audios")
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Split_Set")
EMOTIONS = {
    "A": "angry", "S": "sad", "H": "happy", "U": "surprise", "F": "fear", "D": "disgust",
    "C": "contempt", "N": "neutral", "O": "other", "X": "no_agreement",
}
CORPUS = "msp-podcast"  # every root's corpus name, its speakers' prefix
UNIDENTIFIED = ("unknown", "")  # SpkrID (any case) of a clip whose speaker the corpus did not identify


def read_msp_podcast(root: str | Path) -> list[Utterance]:
    """All labelled clips with the consensus A/V/D (already on 1-7) and the official split
    (trainer.data.splits.split_name: "Development" is "val", test sets keep their names: test1, test2).

    MSP-Podcast marks clips of unidentified speakers "Unknown" (here also an empty SpkrID), in
    every official split. They are
    not one person, so each such clip is a speaker of its own ("msp-podcast/Unknown/<file stem>"):
    one shared id would put one "speaker" in train, val and test (no split could be
    speaker-independent), run thousands of strangers through one stream normaliser as if one
    live session, and make them one unit of the speaker bootstrap. Alone, each clip is scored
    as a voice heard for the first time, and resampled alone; clips of one unidentified person
    may then count as independent, the smaller error.
    """
    root = Path(root)
    labels = root / LABELS
    if not labels.is_file():
        raise TrainerError(f"{root}: no {LABELS}; point at the MSP-Podcast folder that holds Labels/ and Audios/")
    return without_duplicates((f"{labels}:{line}", _row(row, root, labels, line))
                              for line, row in csv_rows(labels, COLUMNS))


def _row(row: dict[str, str], root: Path, labels: Path, line: int) -> Utterance:
    code = row["EmoClass"].strip()
    if code not in EMOTIONS:
        raise TrainerError(f"{labels}:{line}: EmoClass {code!r} is not one of {', '.join(EMOTIONS)}")
    try:  # an empty cell: a rating the clip lacks (NaN, unlabelled), as in a manifest
        avd = [dimension(row[k].strip(), k) if row[k].strip() else math.nan for k in ("EmoAct", "EmoVal", "EmoDom")]
    except TrainerError as err:
        raise TrainerError(f"{labels}:{line}: {err}") from None
    return Utterance(
        path=root / AUDIO / row["FileName"].strip(),
        speaker=_speaker(row["SpkrID"].strip(), row["FileName"].strip()),
        emotion=EMOTIONS[code],
        intensity="",
        activation=avd[0],
        valence=avd[1],
        dominance=avd[2],
        split=split_name(row["Split_Set"]),
    )


def _speaker(speaker_id: str, file_name: str) -> str:
    """The namespaced speaker id; a clip of an unidentified speaker is its own (see read_msp_podcast)."""
    if speaker_id.lower() in UNIDENTIFIED:
        return f"{CORPUS}/Unknown/{Path(file_name).stem}"
    return f"{CORPUS}/{speaker_id}"
