"""Speaker-independent splits: a speaker's clips are all in one split, never spread by clip."""
from __future__ import annotations

import csv
import dataclasses
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from emolive.engine.bundle import bundle_member
from emolive.trainer.data.cache import file_key
from emolive.trainer.data.table import csv_rows
from emolive.trainer.data.utterance import Utterance
from emolive.trainer.errors import TrainerError

log = logging.getLogger(__name__)
LEARNING = ("train", "val")  # the splits a model learns from (val: its epoch is chosen there)

LEARNED_CLIPS_FILE = "learned_clips.csv"  # audio,split beside a bundle's splits.csv: the clips it learned from
LEARNED_KEY_HEX = 16  # 64 bits of each file's sha1: no two of a corpus's clips share them, at a third of the size

SPLIT_WORDS = {"dev": "val", "development": "val", "validation": "val"}
"""Other spellings of "val" in a data set's split column (MSP-Podcast's "Development"); any case is read.

A test split keeps its own name ("test", MSP-Podcast's "test1", "test2"): each is scored apart."""

MIXED_SHOWN = 5  # speakers a "several splits" error names


def split_name(word: str) -> str | None:
    """The trainer's name of a data set's split word ("Development" -> "val"); None for an empty cell."""
    key = word.strip().lower()
    return SPLIT_WORDS.get(key, key) or None


def is_held_out(split: str) -> bool:
    """A split the trainer scores and never fits on: "test" and its numbered kinds, not "train"/"val"."""
    return split.startswith("test")


def speaker_splits(utts: list[Utterance]) -> dict[str, str]:
    """Each speaker's one split, from the clips that have one; a speaker in several is an error
    naming them, raised where the data is read, not after training when the split is saved."""
    seen: dict[str, set[str]] = {}
    for u in utts:
        if u.split:
            seen.setdefault(u.speaker, set()).add(u.split)
    mixed = sorted(speaker for speaker, splits in seen.items() if len(splits) > 1)
    if mixed:
        named = "; ".join(f"{speaker} ({', '.join(sorted(seen[speaker]))})" for speaker in mixed[:MIXED_SHOWN])
        more = f" and {len(mixed) - MIXED_SHOWN} more" if len(mixed) > MIXED_SHOWN else ""
        raise TrainerError(f"speaker(s) {named}{more} are in several splits; a split must be speaker-independent: "
                           "give each speaker's clips one split")
    return {speaker: splits.pop() for speaker, splits in seen.items()}


def speaker_split(utts: list[Utterance], val_frac: float = 0.1, test_frac: float = 0.2, seed: int = 0) -> list[Utterance]:
    """Assign "train"/"val"/"test" by speaker; fractions are of speakers, not clips.

    Deterministic for a given seed and set of speakers (speakers are sorted before shuffling,
    so input order does not matter). A non-zero fraction gets at least one speaker.
    """
    speakers = sorted({u.speaker for u in utts})
    order = np.random.default_rng(seed).permutation(len(speakers))
    n_test, n_val = (_count(frac, len(speakers)) for frac in (test_frac, val_frac))
    if n_test + n_val >= len(speakers):
        raise TrainerError(f"{len(speakers)} speakers cannot fill val {val_frac} and test {test_frac} and leave any to train")
    split_of = {}
    for rank, i in enumerate(order):
        split_of[speakers[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return assign_splits(utts, split_of)


def _count(frac: float, n: int) -> int:
    if not 0 <= frac < 1:
        raise TrainerError(f"split fraction must be in [0, 1), got {frac}")
    return max(1, round(frac * n)) if frac > 0 else 0


def assign_splits(utts: list[Utterance], split_of: dict[str, str], source: str = "") -> list[Utterance]:
    """Copies of `utts` with each speaker's split; a speaker missing from `split_of` is an error, which
    names the `source` of the splits where given."""
    missing = sorted({u.speaker for u in utts} - split_of.keys())
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        where = f" in {source}" if source else ""
        raise TrainerError(f"no split for speaker(s) {', '.join(missing[:10])}{more}{where}")
    return [dataclasses.replace(u, split=split_of[u.speaker]) for u in utts]


def write_splits(path: str | Path, utts: list[Utterance]) -> None:
    """Save the split as a speaker,split CSV (speaker-level, so it is the whole split and portable)."""
    split_of = speaker_splits(utts)
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["speaker", "split"])
        writer.writerows(sorted(split_of.items()))


def read_splits(path: str | Path, utts: list[Utterance]) -> list[Utterance]:
    """Apply a split written by `write_splits` (or by hand: its words read as a split column's, an unknown
    one warned, its speakers without spaces around them, as a manifest's) to `utts`. A speaker given two
    splits is refused, naming both lines: the last row had won without a word. So is an empty split: it
    had made a held-out split named "", which the bundle's splits.csv then left out; and an empty speaker."""
    split_of: dict[str, tuple[str, int]] = {}
    for line, row in csv_rows(Path(path), ("speaker", "split")):
        speaker, split = row["speaker"].strip(), split_name(row["split"])
        if not speaker:  # as a manifest refuses it: the row had been passed over without a word
            raise TrainerError(f"{path}:{line}: a row without a speaker: give the speaker, or remove the row")
        if not split:
            raise TrainerError(f"{path}:{line}: speaker {speaker!r} has no split: give it train, val or test")
        earlier = split_of.setdefault(speaker, (split, line))
        if earlier[0] != split:
            raise TrainerError(f"{path}:{line}: speaker {speaker!r} is in split {split!r} here and in "
                               f"{earlier[0]!r} on line {earlier[1]}; a speaker is in one split")
    warn_unknown_split_words({split for split, _ in split_of.values()})
    return assign_splits(utts, {speaker: split for speaker, (split, _) in split_of.items()}, str(path))


def warn_unknown_split_words(splits: set[str]) -> None:
    """A split word that is none of train, val or test* is held out and scored as a split of its own:
    say so, since it is most likely a spelling the trainer does not know (SPLIT_WORDS)."""
    unknown = sorted(s for s in splits if s not in LEARNING and not is_held_out(s))
    if unknown:
        log.warning("split(s) %s are not train, val (dev, development, validation) or test: their clips are "
                    "never trained on and are scored as held-out splits of their own", ", ".join(map(repr, unknown)))


def learned_key(path: str | Path) -> str:
    """A clip's entry in LEARNED_CLIPS_FILE: the start of its file's sha1 (the feature caches' key, hashed once
    per process: loading the data hashed every clip already)."""
    return file_key(path)[:LEARNED_KEY_HEX]


def write_learned_clips(path: str | Path, utts: list[Utterance]) -> None:
    """Save the audio of every clip of the train and val splits with its split, so `held_out_splits`
    knows a clip the model learned from under any path, folder or speaker id: a speaker id holds
    its manifest's folder name, so a corpus copied into another folder has new ones, and its
    scores would otherwise pass for held out."""
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["audio", "split"])
        writer.writerows(sorted({(learned_key(u.path), u.split) for u in utts if u.split in LEARNING}))


def learned_splits(splits_csv: Path, utts: list[Utterance], recorded: dict[str, str] | None = None
                   ) -> list[str | None]:
    """For each clip, the split ("train" or "val") the model learned it in, by its speaker or by its
    audio (LEARNED_CLIPS_FILE beside `splits_csv`, where the bundle has one); None for a clip it did
    not learn from. `recorded`: recorded_splits(splits_csv), where the caller has read it already."""
    seen = recorded_splits(splits_csv) if recorded is None else recorded
    clips = bundle_member(splits_csv.with_name(LEARNED_CLIPS_FILE))
    heard = {row["audio"]: row["split"] for _, row in csv_rows(clips, ("audio", "split"))} if clips else {}

    def split_of(u: Utterance) -> str | None:
        if seen.get(u.speaker) in LEARNING:
            return seen[u.speaker]
        # the clip's file is read and hashed only where a learned-clips file could name it
        return heard.get(learned_key(u.path)) if heard else None  # it holds only train and val clips

    return [split_of(u) for u in utts]


def recorded_splits(splits_csv: Path) -> dict[str, str]:
    """Each speaker's split as a bundle's splits.csv records it."""
    return {row["speaker"]: row["split"] for _, row in csv_rows(splits_csv, ("speaker", "split"))}


def held_out_splits(splits_csv: Path, utts: list[Utterance], warn: bool) -> list[Utterance]:
    """The model's own split for clips it learned from (learned_splits), and for the other clips of a
    speaker it held out (its test2, holdout…: the data's own words had hidden the bundle's test speakers
    from `--split test`); every other clip keeps the data's own split (test1, holdout…) or, without one,
    is "test". A clip the data calls "test" that the model learned is not held out, whatever the data
    says. Warns when the data holds such clips."""
    recorded = recorded_splits(splits_csv)  # read once: both views of the file are of the same contents
    learned_in = learned_splits(splits_csv, utts, recorded)
    marked = [replace(u, split=split or recorded.get(u.speaker) or u.split or "test")
              for u, split in zip(utts, learned_in)]
    learned = [u for u, split in zip(marked, learned_in) if split]
    if warn and learned:
        # the held-out splits these clips have (MSP-Podcast's test1, test2): "--split test" found none there
        others = sorted({u.split for u in marked if u.split not in LEARNING}) or ["test"]
        speakers = len({u.speaker for u in learned})
        log.warning("%d of %d clips (%d speaker%s) were in this model's training or validation split (%s): their "
                    "scores are not held out; --split %s keeps only the other speakers", len(learned), len(utts),
                    speakers, "" if speakers == 1 else "s", splits_csv, " or --split ".join(others))
    return marked


def only_split(utts: list[Utterance], split: str) -> list[Utterance]:
    """The clips of `split`; where there are none, an error naming the splits the clips are in (a clip
    a model learned is in "train" or "val" whatever the data calls it, and MSP-Podcast has "test1"
    and "test2", not "test")."""
    chosen = [u for u in utts if u.split == split]
    if not chosen:
        counts = Counter(u.split for u in utts)
        there = ", ".join(f"{name} ({counts[name]})" for name in sorted(counts, key=str))
        raise TrainerError(f"no utterances in split {split!r}; the clips' splits: {there or 'none (no clips)'}"
                           + ("; a clip the model learned is in its train or val split" if
                              counts.keys() & {"train", "val"} else ""))
    return chosen
