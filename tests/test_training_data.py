"""What the training data must tell before training starts: speaker-independent given splits, a
validation set, targets a CCC can measure; and MSP-Podcast's unidentified speakers, which are not one
speaker. Real EmoDB speech; each run trains a tiny model for two epochs."""
from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from emolive.trainer.cli import main as trainer_main
from emolive.trainer.config import TrainConfig
from emolive.trainer.data import Utterance, read_manifest, vad_targets
from emolive.trainer.errors import TrainerError
from emolive.trainer.labelled import labelled_set
from emolive.trainer.train import train
from tests.conftest import CORPORA

MSP_CODE = {"angry": "A", "sad": "S", "happy": "H", "fear": "F", "disgust": "D", "neutral": "N"}  # EmoDB's in MSP's


def emodb(per_speaker: int, speakers: int = 6, emotions: tuple[str, ...] = tuple(MSP_CODE),
          skip: int = 0) -> list[dict]:
    """Rows of the shared EmoDB manifest (absolute paths): `per_speaker` clips of `emotions` from each
    of `speakers` speakers (after the first `skip`), emotions in turn so every speaker has several."""
    with open(CORPORA / "emodb" / "manifest.csv", newline="") as f:
        rows = [{**r, "path": str(CORPORA / "emodb" / r["path"])} for r in csv.DictReader(f)
                if r["emotion"] in emotions]
    chosen = []
    for speaker in sorted({r["speaker"] for r in rows})[skip:skip + speakers]:
        chosen += interleave([r for r in rows if r["speaker"] == speaker], emotions)[:per_speaker]
    return chosen


def interleave(clips: list[dict], emotions: tuple[str, ...]) -> list[dict]:
    """One clip of each emotion in turn, so the first few clips of a speaker differ in emotion."""
    queues = [[c for c in clips if c["emotion"] == e] for e in emotions]
    out = []
    while any(queues):
        out += [q.pop(0) for q in queues if q]
    return out


def write_manifest(folder: Path, rows: list[dict], **columns: list[str]) -> Path:
    """`rows` as a manifest (path, speaker, emotion, plus `columns`: column -> a value per row)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "manifest.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "speaker", "emotion", *columns])
        writer.writeheader()
        for i, r in enumerate(rows):
            writer.writerow({"path": r["path"], "speaker": r["speaker"], "emotion": r["emotion"],
                             **{k: v[i] for k, v in columns.items()}})
    return out


def write_msp_podcast(root: Path, rows: list[dict], speakers: list[str], splits: list[str]) -> Path:
    """An MSP-Podcast layout of real speech: Audios/ links to the clips, labels from their categories."""
    (root / "Audios").mkdir(parents=True)
    labels = []
    for i, (r, speaker, split) in enumerate(zip(rows, speakers, splits)):
        name = f"MSP-PODCAST_0001_{i:04d}.flac"
        (root / "Audios" / name).symlink_to(r["path"])
        act, val, dom = vad_targets(r["emotion"])
        labels.append({"FileName": name, "EmoClass": MSP_CODE[r["emotion"]], "EmoAct": f"{act:.2f}",
                       "EmoVal": f"{val:.2f}", "EmoDom": f"{dom:.2f}", "SpkrID": speaker, "Split_Set": split})
    (root / "Labels").mkdir()
    with (root / "Labels" / "labels_consensus.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(labels[0]))
        writer.writeheader()
        writer.writerows(labels)
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One feature cache for the module's runs: the same clips are featurised once."""
    return tmp_path_factory.mktemp("cache")


def run(cache: Path, out: Path, *data: str) -> int:
    return trainer_main(["train", *data, "--cache", str(cache), "--out", str(out), "--epochs", "2", "--patience", "10",
                         "--hidden", "8", "--embedding-dim", "8", "--batch-size", "8", "--epoch-clips", "0"])


def refused(capsys, cache: Path, out: Path, *data: str) -> str:
    """The one error line of a run refused before any feature is computed or epoch run."""
    assert run(cache, out, *data) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err and "epoch" not in err.replace("--epochs", ""), err
    assert not cache.exists() and not out.exists()  # nothing featurised, nothing trained
    return errors[0]


# splits ----------------------------------------------------------------------------------------

def test_msp_podcast_with_unknown_speakers_in_every_split_trains_and_keeps_its_official_splits(tmp_path, cache):
    """MSP-Podcast's SpkrID "Unknown" is in Train, Development and Test: the run failed after all of
    training ("speaker msp-podcast/Unknown is in several splits"). Each unknown clip is its own speaker."""
    rows = emodb(per_speaker=5, speakers=6)
    speakers = [r["speaker"] if i % 5 else "Unknown" for i, r in enumerate(rows)]
    splits = ["Train"] * 20 + ["Development"] * 5 + ["Test1"] * 5
    root = write_msp_podcast(tmp_path / "msp", rows, speakers, splits)
    assert run(cache, tmp_path / "model", "--msp-podcast", str(root)) == 0
    split_of = {r["speaker"]: r["split"] for r in csv.DictReader((tmp_path / "model" / "splits.csv").open())}
    unknown = {s: split for s, split in split_of.items() if "Unknown" in s}
    assert sorted(unknown.values()) == ["test1", "train", "train", "train", "train", "val"]
    assert {split_of[f"msp-podcast/{s}"] for s in ("03", "08", "09", "10")} == {"train"}
    assert (split_of["msp-podcast/11"], split_of["msp-podcast/12"]) == ("val", "test1")
    results = json.loads((tmp_path / "model" / "results.json").read_text())
    assert (results["n_train"], results["n_val"], results["test"]["test1"]["n"]) == (20, 5, 5)


def test_a_manifest_with_a_dev_split_trains_on_its_splits(tmp_path, cache):
    """"dev" made a test split of its own and left no validation clips: a traceback after epoch 0."""
    rows = emodb(per_speaker=5, speakers=6)
    split = ["train"] * 20 + ["dev"] * 5 + ["Test"] * 5
    manifest = write_manifest(tmp_path / "corpus", rows, split=split)
    assert run(cache, tmp_path / "model", "--data", str(manifest)) == 0
    results = json.loads((tmp_path / "model" / "results.json").read_text())
    assert (results["n_train"], results["n_val"], list(results["test"])) == (20, 5, ["test"])


def test_official_splits_are_kept_beside_a_manifest_without_splits(tmp_path, cache):
    """Pooled with a manifest without splits, MSP-Podcast's Development speaker became train and its
    Test1 speaker val: everything was split again by speaker. Now only the manifest's clips are."""
    msp_rows, other = emodb(per_speaker=4, speakers=4), emodb(per_speaker=4, speakers=6, skip=4)
    root = write_msp_podcast(tmp_path / "msp", msp_rows, [r["speaker"] for r in msp_rows],
                             ["Train"] * 8 + ["Development"] * 4 + ["Test1"] * 4)
    manifest = write_manifest(tmp_path / "corpus", other)
    assert run(cache, tmp_path / "model", "--data", str(manifest), "--msp-podcast", str(root)) == 0
    split_of = {r["speaker"]: r["split"] for r in csv.DictReader((tmp_path / "model" / "splits.csv").open())}
    assert [split_of[f"msp-podcast/{s}"] for s in ("03", "08", "09", "10")] == ["train", "train", "val", "test1"]
    drawn = [split_of[u.speaker] for u in read_manifest(manifest)[::4]]
    assert sorted(drawn) == ["test", "train", "train", "train", "train", "val"]  # its own val and test speakers


def test_a_speaker_in_two_splits_of_a_manifest_is_refused_before_training(tmp_path, capsys):
    rows = emodb(per_speaker=5, speakers=6)
    split = ["test"] + ["train"] * 19 + ["val"] * 5 + ["test"] * 5  # speaker 03: one clip in test
    manifest = write_manifest(tmp_path / "corpus", rows, split=split)
    line = refused(capsys, tmp_path / "cache", tmp_path / "model", "--data", str(manifest))
    assert line.endswith("error: speaker(s) corpus/03 (test, train) are in several splits; a split must be "
                         "speaker-independent: give each speaker's clips one split")


# validation ------------------------------------------------------------------------------------

def test_no_validation_clips_is_refused_before_training(tmp_path, capsys):
    """--val-frac 0, or MSP-Podcast labels without Development rows: a traceback after the first epoch."""
    rows = emodb(per_speaker=5, speakers=6)
    manifest = write_manifest(tmp_path / "corpus", rows)
    line = refused(capsys, tmp_path / "cache", tmp_path / "model", "--data", str(manifest), "--val-frac", "0")
    assert "no validation clips (split 'val')" in line and "--val-frac above 0" in line
    root = write_msp_podcast(tmp_path / "msp", rows, [r["speaker"] for r in rows], ["Train"] * 25 + ["Test1"] * 5)
    assert "no validation clips" in refused(capsys, tmp_path / "cache", tmp_path / "model", "--msp-podcast", str(root))


@pytest.mark.parametrize("case", ["all angry", "emotions the VAD map lacks", "a validation speaker of one emotion"])
def test_targets_no_ccc_can_measure_are_refused_before_training(tmp_path, capsys, case):
    """Every epoch scored NaN (with numpy's "Mean of empty slice"), then "no epoch to select: --epochs 2
    must exceed the first selectable epoch 0", after all of training."""
    if case == "all angry":
        manifest = write_manifest(tmp_path / "corpus", emodb(per_speaker=5, speakers=6, emotions=("angry",)))
        expected = r"the \d+ training clips have no target a CCC can measure: activation all 6\.\d\d, valence all " \
                   r"\d\.\d\d, dominance all \d\.\d\d \(emotions: angry\)"
    elif case == "emotions the VAD map lacks":
        rows = [{**r, "emotion": ("frustrated", "smug")[i % 2]} for i, r in enumerate(emodb(per_speaker=5))]
        manifest = write_manifest(tmp_path / "corpus", rows)
        expected = r"the \d+ training clips have no target a CCC can measure: activation unlabelled, valence " \
                   r"unlabelled, dominance unlabelled \(emotions: frustrated, smug\)"
    else:
        rows = emodb(per_speaker=5, speakers=5) + emodb(per_speaker=5, speakers=1, emotions=("angry",), skip=5)
        manifest = write_manifest(tmp_path / "corpus", rows, split=["train"] * 20 + ["test"] * 5 + ["val"] * 5)
        expected = r"the 5 validation clips have no target a CCC can measure: .*\(emotions: angry\)"
    line = refused(capsys, tmp_path / "cache", tmp_path / "model", "--data", str(manifest))
    assert re.search(expected, line), line


def test_a_nan_validation_score_says_the_ccc_could_not_be_measured(tmp_path):
    """Validation clips whose estimates are not finite (here: NaN features) score NaN every epoch: the
    error says so, not "no epoch to select", and numpy's empty-mean warning does not leak."""
    rng = np.random.default_rng(0)
    utts = [Utterance(tmp_path / f"{i}.wav", f"c/{i % 4}", "sad", "", *rng.uniform(1, 7, 3)) for i in range(24)]
    features = [rng.normal(size=(60, 43)).astype(np.float32) for _ in utts]
    data = labelled_set(utts, features, ["sad"])
    val = labelled_set(utts[:8], [np.full_like(f, np.nan) for f in features[:8]], ["sad"])
    cfg = TrainConfig(epochs=2, batch_size=8, hidden=8, embedding_dim=8, stream_norm=False, epoch_clips=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(TrainerError, match=r"^the validation CCC could not be measured in any epoch from 0 to 1: "
                                               r"the model's estimates were not finite"):
            train(data, val, ["sad"], cfg, log=lambda _: None)
