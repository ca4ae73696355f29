"""Dataset adapters, VAD targets, speaker splits and the feature cache."""
import csv
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tests.conftest import CORPORA, SHARED

from emolive.engine.features import FrontEndConfig, compute
from emolive.trainer.errors import TrainerError
from emolive.trainer.data import (
    FeatureCache,
    Utterance,
    category_points,
    feature_stats,
    load_audio,
    read_manifest,
    read_msp_podcast,
    read_splits,
    speaker_split,
    vad_targets,
    write_splits,
)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _tone(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1, freq: float = 220.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, rate)
    return path


# VAD map ---------------------------------------------------------------------------------------

def test_category_points_map_lexicon_to_1_7():
    # pytest.approx's default (1e-6 relative) in this section: closed-form float64 arithmetic on table
    # values, exact to ~1e-15 on any IEEE-754 machine
    points = category_points()
    assert points["happy"] == pytest.approx((1 + 6 * 0.732, 1 + 6 * 0.960, 1 + 6 * 0.850))
    assert set(points) >= {"neutral", "calm", "angry", "boredom", "surprise", "contempt"}


def test_packaged_map_is_the_shared_one():
    from emolive.trainer.data.vad import VAD_MAP

    assert VAD_MAP.read_text() == (SHARED / "vad_map.csv").read_text()


def test_intensity_rule():
    neutral, angry = np.array(vad_targets("neutral")), np.array(vad_targets("angry"))
    assert vad_targets("angry", "strong") == pytest.approx(tuple(angry))
    assert vad_targets("angry", "normal") == pytest.approx(tuple(neutral + 0.75 * (angry - neutral)))
    assert vad_targets("neutral", "strong") == pytest.approx(tuple(neutral))


def test_a_level_without_a_category_takes_its_activation_under_any_of_its_words():
    """strong = high and medium = normal (INTENSITY_WEIGHT); without a category they had no target at all."""
    for word, level in (("strong", "high"), ("medium", "normal"), ("high", "high"), ("low", "low")):
        activation, *rest = vad_targets("", word)
        assert activation == vad_targets("", level)[0] and not np.isnan(activation) and np.isnan(rest).all(), word
    assert vad_targets("", "strong")[0] > vad_targets("", "medium")[0] > vad_targets("", "low")[0]


def test_unknown_emotion_or_intensity_lists_known():
    with pytest.raises(ValueError, match="'bored' has no VAD target; known: angry, boredom"):
        vad_targets("bored")
    with pytest.raises(ValueError, match="intensity 'whispered'"):
        vad_targets("angry", "whispered")


# manifest --------------------------------------------------------------------------------------

def test_manifest_relative_paths_map_and_given_dimensions(tmp_path):
    csv_path = _write_csv(tmp_path / "corpus" / "manifest.csv", [
        {"path": "a/1.flac", "speaker": "01", "emotion": "sad", "intensity": "normal", "activation": "", "valence": "", "dominance": "", "split": ""},
        {"path": "a/2.flac", "speaker": "02", "emotion": "other", "intensity": "", "activation": "2", "valence": "3.5", "dominance": "7", "split": "test"},
    ])
    first, second = read_manifest(csv_path)
    assert first.path == tmp_path / "corpus" / "a" / "1.flac"
    assert first.speaker == "corpus/01" and first.split is None
    assert first.avd == pytest.approx(vad_targets("sad", "normal"))
    assert second.avd == (2.0, 3.5, 7.0) and second.split == "test" and second.emotion == "other"
    assert read_manifest(csv_path, corpus="x")[0].speaker == "x/01"


def test_manifest_minimal_columns(tmp_path):
    csv_path = _write_csv(tmp_path / "m.csv", [{"path": "1.wav", "speaker": "s", "emotion": "happy"}])
    (utt,) = read_manifest(csv_path)
    assert utt.avd == pytest.approx(vad_targets("happy")) and utt.intensity == ""


def test_manifest_unknown_intensity_is_unmarked_with_one_warning(tmp_path, caplog):
    csv_path = _write_csv(tmp_path / "m.csv", [
        {"path": "1.wav", "speaker": "s", "emotion": "sad", "intensity": "XX"},
        {"path": "2.wav", "speaker": "s", "emotion": "angry", "intensity": "XX"},
        {"path": "3.wav", "speaker": "s", "emotion": "", "intensity": "mild"},
    ])
    with caplog.at_level("WARNING"):
        sad, angry, level_only = read_manifest(csv_path)
    assert sad.avd == pytest.approx(vad_targets("sad")) and angry.avd == pytest.approx(vad_targets("angry"))
    assert np.isnan(level_only.avd).all()  # no category and no known level: nothing to learn from
    warnings = [r.getMessage() for r in caplog.records if "intensity" in r.getMessage()]
    assert len(warnings) == 1 and "'mild', 'xx'" in warnings[0]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"path": "1.wav", "speaker": "s", "emotion": "sad", "activation": "x", "valence": "", "dominance": ""},
         "activation 'x' is not a number"),
        ({"path": "1.wav", "speaker": "s", "emotion": "sad", "activation": "0.184", "valence": "4", "dominance": "4"},
         r"activation 0.184 is outside the 1-7 scale: map ratings of another scale onto it first \(0 to 1: 1 \+ 6x"),
        ({"path": "1.wav", "speaker": "s", "emotion": "sad", "activation": "nan", "valence": "4", "dominance": "4"},
         "activation 'nan' is not a number; leave the cell empty for a clip without the rating"),
        ({"path": "1.wav", "emotion": "sad"}, "missing column"),
    ],
)
def test_manifest_errors_name_the_problem(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        read_manifest(_write_csv(tmp_path / "m.csv", [row]))


def test_a_path_cell_names_the_file_it_plainly_means(tmp_path):
    """A stray space after the name (a spreadsheet's) and Windows' backslashes named no file: the clip was
    reported missing, without its manifest line. A name that exists as written is taken as written."""
    (tmp_path / "spk01").mkdir()
    for name in ("clip.wav", "odd name .wav"):
        (tmp_path / "spk01" / name).write_bytes(b"")
    rows = [{"path": cell, "speaker": "s", "emotion": "sad"}
            for cell in ("spk01\\clip.wav", " spk01/clip.wav ", "spk01/odd name .wav", "spk01\\missing.wav")]
    got = [u.path for u in read_manifest(_write_csv(tmp_path / "m.csv", rows))]  # the first two: one file, once
    assert got == [tmp_path / "spk01" / "clip.wav", tmp_path / "spk01" / "odd name .wav",
                   tmp_path / "spk01\\missing.wav"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"path,speaker,emotion\n1.wav,s\n", r"m.csv:2: 2 field\(s\), the header has 3"),
        (b"path,speaker,emotion\n1.wav,s,sad\n2.wav,s,sad,extra\n", r"m.csv:3: 4 field\(s\), the header has 3"),
        (b"path,speaker,emotion\n1.wav,s,sad\n2.wav,J\xf6rg,sad\n", r"m.csv:3: byte 0xf6 is not UTF-8"),
        (b"path,speaker,emotion\n,s,sad\n", r"m.csv:2: empty path"),
        (b"path,speaker,emotion\n1.wav, ,sad\n", r"m.csv:2: empty speaker"),
        (b"path,speaker,emotion\n1.wav,s,sad\n1.wav,t,sad\n", r"m.csv:3: .*1.wav' is listed again .*m.csv:2"),
        # the csv reader counts a line once parsed: the error named the line before the bad one
        (b"path,speaker,emotion\n1.wav,s,sad\n2.wav,s," + b"a" * 200_000 + b"\n", r"m.csv:3: not a CSV row \(field larger"),
        # a quote left open swallows the lines after it: the count alone pointed at the last line
        (b'path,speaker,emotion\n1.wav,s,sad\n"2.wav,s,sad\n3.wav,t,sad\n', r"m.csv:3: a quote opened in this row is "
         r"never closed \(the rest of the file would be one value\)"),
        # one closed further on: the row it swallowed has too few fields
        (b'path,speaker,emotion\n"1.wav,s,sad\n2.wav",s\n', r"m.csv:3: 2 field\(s\), the header has 3; "
         r"a quoted value runs over several lines up to here: is a quote left open on a line above\?"),
    ],
)
def test_malformed_manifests_are_one_line_errors_naming_file_and_line(tmp_path, data, message):
    (tmp_path / "m.csv").write_bytes(data)
    with pytest.raises(TrainerError, match=message) as err:
        read_manifest(tmp_path / "m.csv")
    assert "\n" not in str(err.value)


def test_a_manifest_of_a_header_alone_is_named_as_listing_no_clip(tmp_path):
    """It said "no utterances: give --data MANIFEST.csv", though --data had been given."""
    from emolive.trainer.pipeline import load_utterances

    (tmp_path / "m.csv").write_text("path,speaker,emotion\n")
    with pytest.raises(TrainerError, match=r"^no utterances: .*m.csv list\(s\) no clip$"):
        load_utterances([str(tmp_path / "m.csv")])


def test_missing_manifest_is_a_user_error(tmp_path):
    with pytest.raises(TrainerError, match="missing.csv: cannot read the table"):
        read_manifest(tmp_path / "missing.csv")


def test_a_byte_order_mark_is_accepted(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM; without utf-8-sig the first column would be '\\ufeffpath'."""
    (tmp_path / "m.csv").write_bytes("path,speaker,emotion\n1.wav,Jörg,sad\n".encode("utf-8-sig"))
    (utt,) = read_manifest(tmp_path / "m.csv")
    assert utt.path == tmp_path / "1.wav" and utt.speaker == f"{tmp_path.name}/Jörg"


@pytest.mark.parametrize("text", [
    # Excel where "," is the decimal mark: its ratings too (a comma was "not a number")
    "path;speaker;emotion;valence\r\n1.wav;Jörg;sad;2,5\r\n2.wav;Jörg;happy;\r\n",
    "path,speaker,emotion,valence\n1.wav,Jörg,sad,\"2,5\"\n2.wav,Jörg,happy,\n",  # quoted in a comma-separated one
    "path\tspeaker\temotion\tvalence\n1.wav\tJörg\tsad\t2.5\n2.wav\tJörg\thappy\t\n",  # a .tsv
    "path, speaker, emotion, valence\n1.wav, Jörg, sad, 2.5\n2.wav, Jörg, happy,\n",  # typed by hand
])
def test_a_manifest_separated_as_spreadsheets_and_people_separate_is_read_alike(tmp_path, text):
    """Where the comma is the decimal mark Excel separates fields by semicolons; a .tsv by tabs; hands
    put spaces after commas. Each reads as the comma-separated table."""
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    sad, happy = read_manifest(tmp_path / "m.csv")
    assert (sad.path, sad.speaker, sad.emotion, sad.avd[1]) == (tmp_path / "1.wav", f"{tmp_path.name}/Jörg", "sad", 2.5)
    assert (happy.path, happy.emotion, happy.avd) == (tmp_path / "2.wav", "happy", pytest.approx(vad_targets("happy")))


def test_manifest_columns_are_found_whatever_their_case(tmp_path):
    """pandas and spreadsheets capitalise: a "Valence" column read as another column had its ratings
    replaced by the map's in silence."""
    (tmp_path / "m.csv").write_text("Path,Speaker, EMOTION ,Valence,Split\n1.wav,s,sad,6.5,Test\n", encoding="utf-8")
    (utt,) = read_manifest(tmp_path / "m.csv")
    assert (utt.path, utt.emotion, utt.valence, utt.split) == (tmp_path / "1.wav", "sad", 6.5, "test")
    (tmp_path / "two.csv").write_text("path,speaker,emotion,valence,Valence\n1.wav,s,sad,6.5,2\n", encoding="utf-8")
    with pytest.raises(TrainerError, match="more than one column reads as valence"):
        read_manifest(tmp_path / "two.csv")


def test_an_arousal_column_is_read_as_activation(tmp_path):
    """It was ignored as an unknown column: a model trained on such a table had no activation label
    at all, without a word. With both columns, which one holds the ratings cannot be guessed."""
    (tmp_path / "m.csv").write_text("path,speaker,emotion,Arousal,valence\n1.wav,s,,6.5,2\n", encoding="utf-8")
    (utt,) = read_manifest(tmp_path / "m.csv")
    assert (utt.activation, utt.valence) == (6.5, 2.0) and np.isnan(utt.dominance)
    (tmp_path / "both.csv").write_text("path,speaker,emotion,arousal,activation\n1.wav,s,,6.5,2\n")
    with pytest.raises(TrainerError, match="more than one column reads as activation"):
        read_manifest(tmp_path / "both.csv")


def test_duplicate_rows_are_dropped_with_a_warning(tmp_path, caplog):
    (tmp_path / "m.csv").write_text("path,speaker,emotion\n1.wav,s,sad\n2.wav,s,angry\n1.wav,s,sad\n")
    utts = read_manifest(tmp_path / "m.csv")
    assert [u.path.name for u in utts] == ["1.wav", "2.wav"]
    assert "dropped 1 duplicate row(s)" in caplog.text and "m.csv:4" in caplog.text


def test_a_clip_in_two_manifests_counts_once(tmp_path, caplog):
    """Named twice, by the same path or another spelling of it (absolute; it was refused as "listed
    again with other labels", which it was not), or copied into another corpus folder, where its
    speaker id is another: there it would have been learned and tested at once."""
    from emolive.trainer.pipeline import load_utterances

    speech = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    sf.write(tmp_path / "1.wav", speech, 16000)
    sf.write(tmp_path / "2.wav", speech[::-1], 16000)
    rows = [{"path": "1.wav", "speaker": "s", "emotion": "sad"}, {"path": "2.wav", "speaker": "t", "emotion": "sad"}]
    manifest = _write_csv(tmp_path / "m.csv", rows)
    absolute = _write_csv(tmp_path / "absolute.csv", [{**rows[0], "path": str(tmp_path / "1.wav")}])
    assert [u.path.name for u in load_utterances([str(manifest), str(manifest), str(absolute)])] == ["1.wav", "2.wav"]
    assert f"dropped 3 duplicate row(s) listing an audio file again with the same labels (the first: {manifest}, " \
        f"a copy of {manifest})" in caplog.text
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "1.wav").write_bytes((tmp_path / "1.wav").read_bytes())
    copy = _write_csv(tmp_path / "copy" / "m.csv", [{**rows[0], "speaker": "s", "split": "test"}])
    caplog.clear()
    assert [u.path for u in load_utterances([str(manifest), str(copy)])] == [tmp_path / "1.wav", tmp_path / "2.wav"]
    assert "dropped 1 clip(s) whose audio is a copy of another clip's" in caplog.text
    relabelled = _write_csv(tmp_path / "copy" / "angry.csv", [{**rows[0], "emotion": "angry"}])
    with pytest.raises(TrainerError, match=r"1.wav holds the same audio as .*1.wav with other labels; keep one"):
        load_utterances([str(manifest), str(relabelled)])


def test_msp_podcast_ratings_must_be_numbers_on_the_scale(tmp_path):
    labels = _msp_fixture(tmp_path / "msp") / "Labels" / "labels_consensus.csv"
    text = labels.read_text().splitlines()
    text[2] = text[2].replace("3.5", "high")
    labels.write_text("\n".join(text) + "\n")
    with pytest.raises(TrainerError, match=r"labels_consensus.csv:3: EmoAct 'high' is not a number"):
        read_msp_podcast(tmp_path / "msp")


def test_a_partial_row_takes_the_given_dimensions_and_the_map_for_the_rest(tmp_path):
    csv_path = _write_csv(tmp_path / "m.csv", [{"path": "1.wav", "speaker": "s", "emotion": "sad", "activation": "3",
                                                "valence": "", "dominance": ""}])
    (utt,) = read_manifest(csv_path)
    assert utt.avd == pytest.approx((3.0, *vad_targets("sad")[1:]))


def test_shared_corpora_read():
    for name, n, speakers in (("emodb", 535, 10), ("ravdess", 1434, 24)):
        utts = read_manifest(CORPORA / name / "manifest.csv")
        assert len(utts) == n and len({u.speaker for u in utts}) == speakers
        assert all(1 <= v <= 7 for u in utts for v in u.avd)


# MSP-Podcast -----------------------------------------------------------------------------------

def _msp_fixture(root: Path) -> Path:
    (root / "Audios").mkdir(parents=True)
    rows = []
    for i, (code, spk, split) in enumerate([("A", "12", "Train"), ("N", "12", "Train"), ("X", "7", "Development"), ("H", "Unknown", "Test1")]):
        name = f"MSP-PODCAST_0001_{i:04d}.wav"
        _tone(root / "Audios" / name, seconds=0.3)
        rows.append({"FileName": name, "EmoClass": code, "EmoAct": f"{2 + i}.5", "EmoVal": "4.0", "EmoDom": "3.2",
                     "SpkrID": spk, "Gender": "Female", "Split_Set": split})
    _write_csv(root / "Labels" / "labels_consensus.csv", rows)
    return root


def test_msp_podcast_layout(tmp_path):
    utts = read_msp_podcast(_msp_fixture(tmp_path / "msp"))
    assert [u.emotion for u in utts] == ["angry", "neutral", "no_agreement", "happy"]
    assert [u.split for u in utts] == ["train", "train", "val", "test1"]
    assert [u.speaker for u in utts] == ["msp-podcast/12", "msp-podcast/12", "msp-podcast/7",
                                         "msp-podcast/Unknown/MSP-PODCAST_0001_0003"]
    assert utts[1].avd == (3.5, 4.0, 3.2)
    assert all(u.path.is_file() for u in utts)


def test_an_empty_msp_podcast_rating_is_unlabelled_as_in_a_manifest(tmp_path):
    """A blank cell was "EmoAct '' is not a number", and the error for NaN advised leaving it blank."""
    root = _msp_fixture(tmp_path / "msp")
    _set_msp_columns(root, EmoVal=["4.0", "", "4.0", "4.0"])
    utts = read_msp_podcast(root)
    assert utts[1].activation == 3.5 and math.isnan(utts[1].valence) and utts[1].dominance == 3.2


def test_two_msp_podcast_layout_roots_are_refused_as_one_corpus(tmp_path):
    """Every root's speakers are msp-podcast/<SpkrID>: a second corpus in MSP's layout (BIIC-Podcast) beside
    MSP-Podcast trained with speaker 103 of each as one person, without a word."""
    from emolive.trainer.pipeline import check_corpus_names, load_utterances

    first, second = _msp_fixture(tmp_path / "msp"), _msp_fixture(tmp_path / "biic")
    check_corpus_names([], [str(first), str(first) + "/"])  # one root named twice is one source
    with pytest.raises(TrainerError, match=r"the sources in .*biic and .*msp would both be corpus 'msp-podcast'"):
        load_utterances([], [str(first), str(second)])


def _set_msp_columns(root: Path, **cells: list[str]) -> None:
    """Rewrite labels_consensus.csv's columns `cells` (column -> a value per row)."""
    labels = root / "Labels" / "labels_consensus.csv"
    rows = list(csv.DictReader(labels.open(newline="")))
    for column, values in cells.items():
        for row, value in zip(rows, values):
            row[column] = value
    _write_csv(labels, rows)


def test_msp_podcast_unknown_speakers_in_every_split_are_not_one_speaker(tmp_path):
    """Real MSP-Podcast has SpkrID "Unknown" in Train, Development and Test: as one speaker id, no
    split could be speaker-independent, and the run failed after training, when it saved the split."""
    from emolive.trainer.pipeline import ensure_splits

    root = _msp_fixture(tmp_path / "msp")
    _set_msp_columns(root, SpkrID=["Unknown", "12", "unknown", "Unknown"])
    utts = ensure_splits(read_msp_podcast(root), seed=0, val_frac=0.1, test_frac=0.1)
    assert [u.split for u in utts] == ["train", "train", "val", "test1"]  # the official splits, kept
    unknown = [u.speaker for u in utts if "Unknown" in u.speaker]
    assert len(unknown) == len(set(unknown)) == 3  # one per clip: strangers are not one voice
    write_splits(tmp_path / "splits.csv", utts)  # what failed at save before


def test_msp_podcast_split_words_in_any_case_and_spelling(tmp_path):
    root = _msp_fixture(tmp_path / "msp")
    _set_msp_columns(root, Split_Set=[" train", "TRAIN", "Validation", "Test2 "])
    assert [u.split for u in read_msp_podcast(root)] == ["train", "train", "val", "test2"]


def test_msp_podcast_errors(tmp_path):
    with pytest.raises(ValueError, match="no Labels/labels_consensus.csv"):
        read_msp_podcast(tmp_path)
    root = _msp_fixture(tmp_path / "msp")
    labels = root / "Labels" / "labels_consensus.csv"
    labels.write_text(labels.read_text().replace(",X,", ",Q,"))
    with pytest.raises(ValueError, match=r"labels_consensus.csv:4: EmoClass 'Q'"):
        read_msp_podcast(root)


# splits ----------------------------------------------------------------------------------------

def _utts(n_speakers: int, per_speaker: int = 3) -> list[Utterance]:
    return [Utterance(Path(f"{s}_{i}.wav"), f"c/{s:02d}", "neutral", "", 4.0, 4.0, 4.0)
            for s in range(n_speakers) for i in range(per_speaker)]


def test_speaker_split_never_splits_a_speaker_and_is_deterministic():
    utts = _utts(20)
    split = speaker_split(utts, val_frac=0.1, test_frac=0.2, seed=3)
    by_speaker = {}
    for u in split:
        by_speaker.setdefault(u.speaker, set()).add(u.split)
    assert all(len(s) == 1 for s in by_speaker.values())
    counts = {name: sum(s == {name} for s in by_speaker.values()) for name in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 2, "test": 4}
    assert split == speaker_split(list(reversed(utts)), 0.1, 0.2, seed=3)[::-1]
    assert split != speaker_split(utts, 0.1, 0.2, seed=4)


def test_speaker_split_small_corpus_and_errors():
    split = speaker_split(_utts(3), val_frac=0.1, test_frac=0.1, seed=0)
    assert sorted({u.split for u in split}) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="leave any to train"):
        speaker_split(_utts(2), 0.1, 0.1)


def test_manifest_split_words_dev_development_validation_are_val(tmp_path):
    """A split column saying "dev" made a test split named "dev" and left training without validation."""
    words = ["dev", "Development", "VALIDATION", " Train ", "test", ""]
    csv_path = _write_csv(tmp_path / "m.csv", [{"path": f"{i}.wav", "speaker": str(i), "emotion": "sad", "split": w}
                                               for i, w in enumerate(words)])
    assert [u.split for u in read_manifest(csv_path)] == ["val", "val", "val", "train", "test", None]


def test_an_unknown_split_word_is_warned_once_by_name(tmp_path, caplog):
    from emolive.trainer.pipeline import ensure_splits

    utts = [Utterance(Path(f"{s}.wav"), f"c/{s}", "sad", "", 4.0, 4.0, 4.0, split)
            for s, split in enumerate(["train", "val", "holdout", "holdout", "test1"])]
    with caplog.at_level("WARNING"):
        assert ensure_splits(utts, 0, 0.1, 0.1) == utts
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "'holdout'" in warning and "test1" not in warning


def test_a_speaker_in_two_given_splits_is_refused_where_the_splits_are_taken(tmp_path):
    """Before, only saving the bundle checked it: after all of training."""
    from emolive.trainer.pipeline import ensure_splits

    utts = [Utterance(Path(f"{i}.wav"), f"c/{i // 2}", "sad", "", 4.0, 4.0, 4.0, split)
            for i, split in enumerate(["train", "train", "train", "test", "val", "val"])]
    with pytest.raises(TrainerError, match=r"^speaker\(s\) c/1 \(test, train\) are in several splits") as err:
        ensure_splits(utts, 0, 0.1, 0.1)
    assert "\n" not in str(err.value)


def test_clips_without_a_split_are_split_and_the_data_s_splits_kept(tmp_path, caplog):
    """A manifest without splits pooled with MSP-Podcast's official ones: MSP's Development speaker
    became train and its Test1 val when everything was split again by speaker."""
    from emolive.trainer.pipeline import ensure_splits

    given = read_msp_podcast(_msp_fixture(tmp_path / "msp"))
    unsplit = _utts(10)
    orphan = Utterance(Path("lost.wav"), "msp-podcast/12", "sad", "", 4.0, 4.0, 4.0)  # an empty Split_Set cell
    with caplog.at_level("WARNING"):
        utts = ensure_splits(given + unsplit + [orphan], seed=0, val_frac=0.1, test_frac=0.1)
    assert utts[:len(given)] == given
    assert utts[-1].split == "train"  # its speaker's
    drawn = utts[len(given):-1]
    assert drawn == speaker_split(unsplit, 0.1, 0.1, seed=0)  # split as if alone: its own val and test speakers
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("31 of 35 clips have no split in the data: 1 took their speaker's, 30 (10 speakers) "
                              "were split by speaker")


def test_too_few_clips_without_a_split_say_how_to_train_on_them(tmp_path):
    from emolive.trainer.pipeline import ensure_splits

    given = read_msp_podcast(_msp_fixture(tmp_path / "msp"))
    with pytest.raises(TrainerError, match="the 3 clips without a split in the data: 1 speakers cannot fill .* "
                                           "or --val-frac 0 --test-frac 0 to train on them all"):
        ensure_splits(given + _utts(1), 0, 0.1, 0.1)
    assert {u.split for u in ensure_splits(given + _utts(1), 0, 0.0, 0.0)[len(given):]} == {"train"}


def test_a_split_files_words_and_speakers_read_as_a_manifests(tmp_path, caplog):
    """A misspelt split ("tset") is warned, as in a manifest's split column: a training speaker had been
    held out without a word; a speaker with spaces around it is the manifest's speaker."""
    utts = _utts(4)
    speakers = sorted({u.speaker for u in utts})
    (tmp_path / "s.csv").write_text("speaker,split\n" + "".join(
        f" {s} ,{w}\n" for s, w in zip(speakers, ("train", "Validation", "tset", "test"))))
    with caplog.at_level("WARNING"):
        got = {u.speaker: u.split for u in read_splits(tmp_path / "s.csv", utts)}
    assert got == dict(zip(speakers, ("train", "val", "tset", "test")))
    assert "split(s) 'tset' are not train, val" in caplog.text


def test_splits_round_trip_through_csv(tmp_path):
    utts = _utts(10)
    split = speaker_split(utts, 0.2, 0.2, seed=1)
    write_splits(tmp_path / "splits.csv", split)
    assert read_splits(tmp_path / "splits.csv", utts) == split
    with pytest.raises(ValueError, match="no split for speaker"):
        read_splits(tmp_path / "splits.csv", _utts(11))
    # a speaker given two splits by hand: the last row had won without a word
    lines = (tmp_path / "splits.csv").read_text().splitlines()
    speaker = lines[1].split(",")[0]
    other = "test" if lines[1].split(",")[1] != "test" else "train"
    (tmp_path / "twice.csv").write_text("\n".join([*lines, f"{speaker},{other}"]) + "\n")
    with pytest.raises(ValueError, match=rf"twice.csv:{len(lines) + 1}: speaker '{speaker}' is in split '{other}' "
                                         r"here and in '\w+' on line 2; a speaker is in one split"):
        read_splits(tmp_path / "twice.csv", utts)
    # an empty split had made a held-out split named "", which the bundle's splits.csv left out
    (tmp_path / "empty.csv").write_text("\n".join([*lines[:2], f"{lines[2].split(',')[0]},  ", *lines[3:]]) + "\n")
    with pytest.raises(ValueError, match=r"empty.csv:3: speaker '[^']+' has no split: give it train, val or test"):
        read_splits(tmp_path / "empty.csv", utts)
    # a row without a speaker had been passed over without a word, where a manifest refuses it
    (tmp_path / "nobody.csv").write_text("\n".join([*lines, " ,train"]) + "\n")
    with pytest.raises(ValueError, match=rf"nobody.csv:{len(lines) + 1}: a row without a speaker"):
        read_splits(tmp_path / "nobody.csv", utts)
    mixed = [split[0], Utterance(**{**split[1].__dict__, "split": "other"})]
    with pytest.raises(ValueError, match="several splits"):
        write_splits(tmp_path / "bad.csv", mixed)


# feature cache ---------------------------------------------------------------------------------

def test_load_audio_downmixes_and_resamples(tmp_path):
    stereo = _tone(tmp_path / "s.wav", seconds=0.5, rate=44100, channels=2)
    x = load_audio(stereo.read_bytes(), "s.wav", 16000)
    assert x.dtype == np.float32 and x.ndim == 1 and abs(len(x) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(x))
    assert np.argmax(spectrum) * 16000 / len(x) == pytest.approx(220, abs=3)  # 2 Hz bins: the peak bin, exact


def test_load_audio_reads_an_8k_corpus_without_a_warning_per_clip(tmp_path, caplog):
    """The engine warns about audio below 16 kHz; a trainer reading such a corpus clip by clip must not."""
    clip = _tone(tmp_path / "call.wav", seconds=0.5, rate=8000, channels=1)
    with caplog.at_level("WARNING"):
        x = load_audio(clip.read_bytes(), "call.wav", 16000)
    assert abs(len(x) - 8000) <= 1 and caplog.records == []


def test_feature_cache_computes_once_and_matches_front_end(tmp_path, monkeypatch):
    wav = _tone(tmp_path / "a.wav")
    cache = FeatureCache(tmp_path / "cache")
    first = cache.features(wav)
    np.testing.assert_array_equal(first, compute(load_audio(wav.read_bytes(), "a.wav", 16000)))
    assert first.shape[1] == 43 and len(list(cache.dir.glob("*.npy"))) == 1

    import emolive.trainer.data.cache as cache_module
    monkeypatch.setattr(cache_module, "compute", lambda *a: pytest.fail("recomputed a cached file"))
    np.testing.assert_array_equal(FeatureCache(tmp_path / "cache").features(wav), first)


def test_feature_cache_key_follows_content_and_config(tmp_path):
    wav = _tone(tmp_path / "a.wav", freq=220)
    cache = FeatureCache(tmp_path / "cache")
    before = cache.features(wav)
    _tone(wav, freq=440)  # same path, new content
    assert not np.array_equal(cache.features(wav), before)
    other = FeatureCache(tmp_path / "cache", FrontEndConfig(frame_shift=160))
    assert other.dir != cache.dir and len(other.features(wav)) > len(before)


def test_feature_cache_errors_name_the_file(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(ValueError, match="cannot read audio .*missing.wav"):
        cache.features(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio" * 10)
    with pytest.raises(ValueError, match="cannot compute features of .*bad.wav") as caught:
        cache.features(tmp_path / "bad.wav")
    # the file named once, and what to do (one clip had stopped an evaluation with neither)
    assert str(caught.value).count("bad.wav") == 1 and str(caught.value).endswith("leave its row out of the data")


@pytest.mark.parametrize("corrupt", [b"", b"\x93NUMPY garbage", None, "narrow"])
def test_a_corrupt_cache_entry_is_named_and_computed_again(tmp_path, caplog, corrupt):
    """"narrow": an entry of 7 columns, not the front end's 43, crashed training with an IndexError."""
    wav = _tone(tmp_path / "a.wav")
    cache = FeatureCache(tmp_path / "cache")
    good = cache.features(wav)
    (entry,) = cache.dir.glob("*.npy")
    if corrupt is None:
        np.save(entry, good.astype(np.float64))  # loads, but is not what the cache writes
    elif corrupt == "narrow":
        np.save(entry, np.zeros((5, 7), np.float32))
    else:
        entry.write_bytes(corrupt)
    np.testing.assert_array_equal(FeatureCache(tmp_path / "cache").features(wav), good)
    assert f"cache entry {entry} is corrupt" in caplog.text
    np.testing.assert_array_equal(np.load(entry), good)  # rewritten whole


def test_features_for_keeps_order(tmp_path):
    wavs = [_tone(tmp_path / f"{f}.wav", freq=f) for f in (200, 300)]
    utts = [Utterance(w, "s", "neutral", "", 4, 4, 4) for w in wavs]
    cache = FeatureCache(tmp_path / "cache")
    got = cache.features_for(utts, progress=False)
    for w, f in zip(wavs, got):
        np.testing.assert_array_equal(f, cache.features(w))


def test_feature_stats_match_numpy():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(3, 2, size=(n, 43)).astype(np.float32) for n in (10, 25, 1)]
    mean, std = feature_stats(arrays)
    allframes = np.concatenate(arrays).astype(np.float64)
    # float32 accumulation against float64 over 36 frames: ~1e-7 relative, whatever the CPU
    np.testing.assert_allclose(mean, allframes.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, allframes.std(0), rtol=1e-5)
    with pytest.raises(ValueError):
        feature_stats([])


def test_other_corpora_spellings_of_a_category_map_to_the_same_target(tmp_path):
    from emolive.trainer.data import read_manifest

    csv_path = tmp_path / "m.csv"
    csv_path.write_text("path,speaker,emotion,intensity\n"
                        "a.wav,1,Fearful,Strong\nb.wav,1,fear,strong\nc.wav,2,sadness,\nd.wav,2,SAD,\n"
                        "e.wav,3,ang,\nf.wav,3,angry,\n")
    utts = read_manifest(csv_path)
    assert [u.emotion for u in utts] == ["fear", "fear", "sad", "sad", "angry", "angry"]
    for a, b in zip(utts[::2], utts[1::2]):
        assert a.avd == b.avd


def test_savee_letters_and_the_no_agreement_codes_of_iemocap_and_msp_podcast_are_read(tmp_path):
    """SAVEE's a/d/f/h/n were "not in the VAD map"; IEMOCAP's xxx and oth became classes the model gave
    probabilities for, where MSP-Podcast's X and O are never classes."""
    from emolive.trainer.classes import NOT_A_CLASS

    rows = [{"path": f"{i}.wav", "speaker": "s", "emotion": code}
            for i, code in enumerate(["a", "d", "f", "h", "n", "sa", "su", "xxx", "oth", "X", "O"])]
    utts = read_manifest(_write_csv(tmp_path / "m.csv", rows))
    assert [u.emotion for u in utts[:7]] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert [u.emotion for u in utts[7:]] == ["no_agreement", "other", "no_agreement", "other"]
    assert all(u.emotion in NOT_A_CLASS and all(math.isnan(v) for v in u.avd) for u in utts[7:])


def test_the_advice_for_clips_a_model_learned_names_the_data_s_held_out_splits(tmp_path, caplog):
    """On MSP-Podcast it advised --split test, which then found no clip (its splits are test1, test2)."""
    from emolive.trainer.data.splits import held_out_splits

    manifest = _write_csv(tmp_path / "m.csv", [{"path": "1.wav", "speaker": "a", "emotion": "sad", "split": "train"},
                                               {"path": "2.wav", "speaker": "b", "emotion": "sad", "split": "test1"},
                                               {"path": "3.wav", "speaker": "c", "emotion": "sad", "split": "test2"}])
    (tmp_path / "splits.csv").write_text(f"speaker,split\n{tmp_path.name}/a,train\n")
    marked = held_out_splits(tmp_path / "splits.csv", read_manifest(manifest), warn=True)
    assert [u.split for u in marked] == ["train", "test1", "test2"]
    assert "--split test1 or --split test2 keeps only the other speakers" in caplog.text
    assert "1 of 3 clips (1 speaker) were" in caplog.text


def test_a_speaker_the_model_held_out_keeps_its_recorded_split_over_the_data_s_word(tmp_path):
    """A bundle trained with --splits holding speaker c out as 'holdout', scored on data whose own column calls c
    'train': c's clips were 'train', and `--split holdout` (the split results.json reports) found none."""
    from emolive.trainer.data.splits import held_out_splits

    manifest = _write_csv(tmp_path / "m.csv", [{"path": "1.wav", "speaker": "a", "emotion": "sad", "split": "train"},
                                               {"path": "2.wav", "speaker": "c", "emotion": "sad", "split": "train"},
                                               {"path": "3.wav", "speaker": "d", "emotion": "sad", "split": "test"},
                                               {"path": "4.wav", "speaker": "e", "emotion": "sad"}])
    (tmp_path / "splits.csv").write_text(f"speaker,split\n{tmp_path.name}/a,val\n{tmp_path.name}/c,holdout\n")
    marked = held_out_splits(tmp_path / "splits.csv", read_manifest(manifest), warn=False)
    assert [u.split for u in marked] == ["val", "holdout", "test", "test"]


def test_an_unknown_category_is_warned_about_once_and_no_agreement_not_at_all(tmp_path, caplog):
    """`trainer report` reads each manifest twice (pooled, then alone) and said so twice; a clip raters did
    not agree on (IEMOCAP's xxx) was "not in the VAD map", though it is meant to have no category."""
    manifest = _write_csv(tmp_path / "m.csv", [{"path": "1.wav", "speaker": "s", "emotion": "xyz"},
                                               {"path": "2.wav", "speaker": "s", "emotion": "xxx"}])
    with caplog.at_level(logging.WARNING):
        read_manifest(manifest)
        read_manifest(manifest)
    warned = [r.getMessage() for r in caplog.records if "not in the VAD map" in r.getMessage()]
    assert warned == [f"{manifest}: emotion(s) xyz are not in the VAD map: those clips keep only the dimensions the "
                      "manifest gives"]


def test_split_words_on_the_command_line_and_in_a_splits_file_read_as_a_split_column_s(tmp_path):
    """`--split dev` and a hand-written splits file's "Test" found nothing: only the data's own split
    column read "Development", "dev" and any case as the trainer's names."""
    from emolive.trainer.cli import build_parser
    from emolive.trainer.data.splits import read_splits

    assert [build_parser().parse_args(["evaluate", "--data", "m.csv", "--split", word]).split
            for word in ("dev", "Development", "Test", "test1")] == ["val", "val", "test", "test1"]
    manifest = _write_csv(tmp_path / "m.csv", [{"path": "1.wav", "speaker": "a", "emotion": "sad"},
                                               {"path": "2.wav", "speaker": "b", "emotion": "sad"}])
    (tmp_path / "splits.csv").write_text(f"speaker,split\n{tmp_path.name}/a,Test\n{tmp_path.name}/b,dev\n")
    assert [u.split for u in read_splits(tmp_path / "splits.csv", read_manifest(manifest))] == ["test", "val"]


def test_training_reads_audio_in_the_memory_of_its_16k_mono_form(tmp_path):
    """A 64 kB FLAC of 20 s at 384 kHz in 8 channels decodes to 246 MB of float32: decoded whole and
    then converted, it took twice that (a 251 kB file at 768 kHz would have needed 29 GB); read as
    `emolive score` reads it, block by block, training holds the 1.3 MB it becomes, and the same samples."""
    import tracemalloc

    from emolive.engine.runner import OFFLINE_BLOCK_SIZE
    from emolive.engine.sources import FileSource
    from emolive.trainer.data.cache import load_audio

    path = tmp_path / "wide.flac"
    tone = (1000 * np.sin(np.arange(384000 * 20) * 2 * np.pi * 440 / 384000)).astype(np.int16)
    sf.write(path, np.repeat(tone[:, None], 8, axis=1), 384000, subtype="PCM_16")
    data = path.read_bytes()
    tracemalloc.start()
    try:
        samples = load_audio(data, str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(samples) == 16000 * 20 and peak < 60e6, peak  # numpy's allocations are traced
    with FileSource(path, block_size=OFFLINE_BLOCK_SIZE) as source:
        np.testing.assert_array_equal(samples, np.concatenate(list(source.blocks())))


def test_audio_too_big_for_memory_is_one_line(tmp_path, monkeypatch):
    """A 2 GiB WAV under a 4 GB address-space cap gave a bare MemoryError traceback from the read. (The
    failed allocation is simulated: how much memory a machine lets a process have is not the test's.)"""
    from emolive.trainer.data import cache

    path = tmp_path / "big.wav"
    path.write_bytes(bytes(1000))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cache, "read_bounded", no_memory)
    with pytest.raises(TrainerError, match=rf"cannot read audio {path}: its 1000 bytes do not fit in memory"):
        cache.read_audio_bytes(path)


def test_an_unbalanced_epoch_of_more_clips_than_the_set_makes_more_than_one_pass():
    """--no-balance took the first `clips` of one permutation: --epoch-clips 1200 over 40 clips was one
    pass of 40 without a word. Each pass is a whole permutation; fewer clips than the set are unchanged."""
    from emolive.trainer.sampling import epoch_order

    order = epoch_order(np.random.default_rng(0), 40, 100, None)
    assert len(order) == 100 and sorted(order[:40]) == sorted(order[40:80]) == list(range(40))
    assert np.array_equal(epoch_order(np.random.default_rng(0), 40, 30, None),
                          np.random.default_rng(0).permutation(40)[:30])


def test_training_reads_an_ogg_vorbis_file_whole_as_the_engine_does(tmp_path):
    """The trainer decodes from bytes in memory: the Ogg page check read and seeked that buffer under
    libsndfile, and a whole Vorbis file came out short, then was refused as truncated (9 of 30 here)."""
    from emolive.engine.runner import OFFLINE_BLOCK_SIZE
    from emolive.engine.sources.file import read_mono_16k
    from emolive.trainer.data.cache import load_audio

    for clip in sorted((CORPORA / "emodb" / "wav").glob("*.flac"))[:6]:
        samples, rate = sf.read(clip)
        path = tmp_path / f"{clip.stem}.ogg"
        sf.write(path, samples, rate, format="OGG", subtype="VORBIS")
        np.testing.assert_array_equal(load_audio(path.read_bytes(), str(path)), read_mono_16k(path, str(path), OFFLINE_BLOCK_SIZE))


def test_evaluate_json_has_every_key_whatever_can_be_measured():
    """One speaker (no interval over speakers) and no emotion the class head knows (no UAR): the keys
    were left out, and readers of --json met a KeyError; they are there, null or 0."""
    import emolive
    from emolive.trainer.evaluate import metrics

    student = emolive.load_model("student")
    utts = [Utterance(Path(f"{i}.wav"), "c/01", "calm", "", 4.0 + i % 3, 3.0 + i % 2, 4.0) for i in range(6)]
    n_classes = len(student.meta.class_names)
    out = {"avd": np.tile([4.0, 4.0, 4.0], (6, 1)) + np.arange(6)[:, None] * 0.1,
           "class_probs": np.full((6, n_classes), 1 / n_classes)}
    result = metrics(student, utts, out)
    assert {"ccc", "uar", "n", "n_labelled", "n_classified", "ccc_ci95"} <= result.keys()
    assert result["uar"] is None and result["n_classified"] == 0 and result["ccc_ci95"] == dict.fromkeys(
        ("activation", "valence", "dominance"))


def test_clips_of_digital_silence_are_said_when_evaluated(caplog):
    """Three all-zero clips among a hundred were scored into the CCC without a word (score marks them speech=False);
    a clip of faint noise is no silence."""
    from emolive.engine.features import FrontEndConfig, compute
    from emolive.trainer.evaluate import warn_silent

    quiet = (np.random.default_rng(0).normal(size=16000) * 1e-4).astype(np.float32)
    utts = [Utterance(Path(f"{name}.wav"), "s", "sad", "", 2.0, 2.0, 2.0) for name in ("zeros", "faint")]
    feats = [compute(np.zeros(16000, np.float32)), compute(quiet)]
    with caplog.at_level(logging.WARNING):
        warn_silent(utts, feats, FrontEndConfig().fbank.num_mel_bins)
    assert "1 of 2 clips hold digital silence only (e.g. zeros.wav)" in caplog.text
    caplog.clear()  # a report's second model predicts the same clips: said once
    with caplog.at_level(logging.WARNING):
        warn_silent(utts, feats, FrontEndConfig().fbank.num_mel_bins)
    assert "digital silence" not in caplog.text


def test_a_dimension_without_a_ccc_says_why():
    """The table's "-" and JSON's null said nothing of why: one clip labelled, or every label the same."""
    from emolive.trainer.evaluate import unmeasured

    utts = [Utterance(Path(f"{i}.wav"), "s", "sad", "", 2.0, float("nan") if i else 3.0, 4.0) for i in range(3)]
    result = {"ccc": {"activation": None, "valence": None, "dominance": 0.5}}
    assert unmeasured(utts, result) == {"activation": "its 3 labels are all 2.00",
                                        "valence": "1 of the 3 clips labelled in it"}


def test_evaluate_says_clips_below_16_khz_as_score_does(tmp_path, caplog):
    """`emolive score` warned of 8 kHz clips; `trainer evaluate` scored them in silence."""
    import soundfile as sf

    from emolive.engine.plugin import load_model
    from emolive.trainer.evaluate import warn_narrowband

    for name, rate in (("wide.wav", 16000), ("phone.wav", 8000), ("cd.wav", 44100)):
        sf.write(tmp_path / name, np.zeros(rate // 10, np.float32), rate)
    utts = [Utterance(tmp_path / name, "s", "sad", "", 2.0, 2.0, 2.0) for name in ("wide.wav", "phone.wav", "cd.wav")]
    with caplog.at_level(logging.WARNING):
        warn_narrowband(load_model("student"), utts)
    assert "phone.wav: 8000 Hz audio holds nothing above 4000 Hz" in caplog.text
    assert "(1 of the 3 clips are below 16 kHz)" in caplog.text
