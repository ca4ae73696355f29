"""Generic manifest CSV adapter (the format of the shared corpora and of user-supplied data)."""
from __future__ import annotations

from pathlib import Path

from emolive.trainer.data.table import csv_rows
from emolive.trainer.data.utterance import Utterance
from emolive.trainer.data.vad import canonical_emotion, vad_targets

REQUIRED = ("path", "speaker", "emotion")
DIMENSIONS = ("activation", "valence", "dominance")


def read_manifest(csv_path: str | Path, corpus: str | None = None) -> list[Utterance]:
    """Read a manifest: columns path, speaker, emotion, and optionally intensity,
    activation, valence, dominance (1-7) and split; other columns are ignored.

    Paths are relative to the CSV's folder. A row without dimensional values gets them from the
    VAD map by emotion and intensity. Speakers are namespaced as "<corpus>/<speaker>", the corpus
    defaulting to the CSV folder's name.
    """
    csv_path = Path(csv_path)
    corpus = corpus or csv_path.resolve().parent.name
    return [_row(row, csv_path, corpus, line) for line, row in csv_rows(csv_path, REQUIRED)]


def _row(row: dict[str, str], csv_path: Path, corpus: str, line: int) -> Utterance:
    intensity = (row.get("intensity") or "").strip().lower()
    emotion = canonical_emotion(row["emotion"])
    given = [(row.get(k) or "").strip() for k in DIMENSIONS]
    try:
        if all(given):
            avd = tuple(float(v) for v in given)
            if not all(1.0 <= v <= 7.0 for v in avd):
                raise ValueError(f"dimensional values {given} are outside the 1-7 scale")
        elif any(given):
            raise ValueError("give all of activation, valence, dominance or none")
        else:
            avd = vad_targets(emotion, intensity)
    except ValueError as err:
        raise ValueError(f"{csv_path}:{line}: {err}") from err
    return Utterance(
        path=csv_path.parent / row["path"],
        speaker=f"{corpus}/{row['speaker'].strip()}",
        emotion=emotion,
        intensity=intensity,
        activation=avd[0],
        valence=avd[1],
        dominance=avd[2],
        split=(row.get("split") or "").strip() or None,
    )
