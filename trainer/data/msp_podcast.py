"""MSP-Podcast adapter for the corpus's own layout: Labels/labels_consensus.csv and Audios/."""
from __future__ import annotations

from pathlib import Path

from emolive.trainer.data.manifest import dimension
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
SPLITS = {"Train": "train", "Development": "val"}  # test sets keep their names: test1, test2, ...


def read_msp_podcast(root: str | Path) -> list[Utterance]:
    """All labelled clips with the consensus A/V/D (already on 1-7) and the official split.

    MSP-Podcast marks clips of unidentified speakers "Unknown"; they share one speaker id here,
    which keeps `speaker_split` conservative (never mixes them across splits).
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
    split = row["Split_Set"].strip()
    try:
        avd = [dimension(row[k].strip(), k) for k in ("EmoAct", "EmoVal", "EmoDom")]
    except TrainerError as err:
        raise TrainerError(f"{labels}:{line}: {err}") from None
    return Utterance(
        path=root / AUDIO / row["FileName"].strip(),
        speaker=f"msp-podcast/{row['SpkrID'].strip()}",
        emotion=EMOTIONS[code],
        intensity="",
        activation=avd[0],
        valence=avd[1],
        dominance=avd[2],
        split=SPLITS.get(split, split.lower()),
    )
