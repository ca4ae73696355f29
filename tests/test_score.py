"""`emolive score`: folders, manifests and files to one table; bad files are rows with an error; Ctrl-C keeps rows."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import emolive
from emolive.engine.batch import collect_inputs
from emolive.engine.cli import main
from tests.conftest import corpus_files, interruptible

EMOLIVE = str(Path(sys.executable).parent / "emolive")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three corpus clips in nested folders, a text file posing as audio, and a file that is not audio."""
    root = tmp_path_factory.mktemp("score")
    (root / "a" / "b").mkdir(parents=True)
    clips = corpus_files("emodb", every=150, limit=3)
    for target, clip in zip([root / "one.flac", root / "a" / "two.flac", root / "a" / "b" / "three.flac"], clips):
        shutil.copy(clip, target)
    (root / "a" / "broken.wav").write_text("not audio")
    (root / "notes.txt").write_text("not listed: not an audio extension")
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folders_are_searched_recursively_for_audio_extensions(folder):
    names = [p.name for p in collect_inputs([folder])]
    assert sorted(names) == ["broken.wav", "one.flac", "three.flac", "two.flac"]


def test_score_a_folder_one_row_per_file_and_a_bad_file_is_a_row_with_its_error(folder, tmp_path, capsys,
                                                                               one_torch_thread):
    out = tmp_path / "results.csv"
    assert main(["score", str(folder), "--out", str(out)]) == 0
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert set(rows) == {"broken.wav", "one.flac", "two.flac", "three.flac"}
    assert "cannot read" in rows["broken.wav"]["error"] and rows["broken.wav"]["activation"] == ""
    model = emolive.load_model("student")
    for name in ("one.flac", "two.flac", "three.flac"):
        row = rows[name]
        assert row["error"] == "" and 1.0 <= float(row["activation"]) <= 7.0
        # the file row is the whole-recording estimate emolive.analyze gives
        whole = emolive.analyze(folder.rglob(name).__next__(), model=model).whole
        assert float(row["valence"]) == pytest.approx(whole["valence"], abs=1e-12)
        assert sum(float(row[f"p_{c}"]) for c in model.meta.class_names) == pytest.approx(1.0, abs=1e-4)
    assert "emolive: 1 of 4 files could not be scored" in capsys.readouterr().err


def test_per_window_rows_carry_the_file_path_and_match_the_api(folder, tmp_path, one_torch_thread):
    out = tmp_path / "windows.jsonl"
    clip = folder / "one.flac"
    assert main(["-q", "score", str(clip), "--per", "window", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    windows = emolive.analyze(clip).windows
    assert len(rows) == len(windows) > 0
    assert all(r["path"] == str(clip) and r["error"] == "" for r in rows)
    assert [r["start"] for r in rows] == [w["start"] for w in windows]


def test_a_manifest_lists_files_relative_to_its_folder(folder, tmp_path):
    manifest = folder / "a" / "manifest.csv"
    manifest.write_text("path,emotion\ntwo.flac,anger\nb/three.flac,joy\nmissing.flac,joy\n")
    assert collect_inputs([manifest]) == [folder / "a" / "two.flac", folder / "a" / "b" / "three.flac",
                                          folder / "a" / "missing.flac"]
    (tmp_path / "bad.csv").write_text("file\nx.wav\n")
    with pytest.raises(emolive.EmoliveError, match="'path' column"):
        collect_inputs([tmp_path / "bad.csv"])


def test_parallel_jobs_give_the_same_rows(folder, tmp_path, one_torch_thread):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["-q", "score", str(folder), "--out", str(one)]) == 0
    assert main(["-q", "score", str(folder), "--jobs", "2", "--out", str(two)]) == 0
    assert read_csv(one) == read_csv(two)


def test_ctrl_c_keeps_every_complete_row(tmp_path):
    # ~1,900 clips: the signal comes after 4 rows, long before the run could end on any machine or load
    clips = corpus_files("ravdess") + corpus_files("emodb")
    out = tmp_path / "partial.csv"
    proc = interruptible([EMOLIVE, "-q", "score", *map(str, clips), "--out", str(out)],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    text = out.read_text()
    assert text.endswith("\n")  # no half-written row
    rows = list(csv.DictReader(text.splitlines()))
    assert 3 <= len(rows) < len(clips)
    assert all(r["error"] == "" and np.isfinite(float(r["dominance"])) for r in rows)
    assert [r["path"] for r in rows] == [str(c) for c in clips[:len(rows)]]


def test_an_output_of_another_kind_is_a_one_line_error(folder, capsys):
    assert main(["score", str(folder), "--out", "results.xlsx"]) == 1
    assert capsys.readouterr().err.strip() == "emolive: error: --out results.xlsx: give a .csv, .jsonl or .parquet file name"
    assert not os.path.exists("results.xlsx")


def test_per_turn_rows_are_the_speech_turns(tmp_path, one_torch_thread):
    import soundfile as sf

    from tests.conftest import read_audio

    clips = [read_audio(p) for p in corpus_files("ravdess", every=300, limit=2)]
    gap = np.zeros(2 * 16000, np.float32)
    path = tmp_path / "two.flac"
    sf.write(path, np.concatenate([gap, clips[0], gap, clips[1], gap]), 16000)
    out = tmp_path / "turns.csv"
    assert main(["-q", "score", str(path), "--per", "turn", "--out", str(out)]) == 0
    rows = read_csv(out)
    turns = emolive.analyze(path).turns
    assert len(rows) == len(turns) == 2
    assert [float(r["start"]) for r in rows] == [t["start"] for t in turns]
    assert all(r["speech"] == "True" and r["path"] == str(path) for r in rows)


def test_sigterm_during_parallel_scoring_ends_like_ctrl_c(tmp_path):
    clips = corpus_files("ravdess") + corpus_files("emodb")
    out = tmp_path / "partial.csv"
    proc = subprocess.Popen([EMOLIVE, "-q", "score", *map(str, clips), "--out", str(out), "--jobs", "2"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated:" in err and "files scored" in err
    text = out.read_text()
    assert text.endswith("\n") and 3 <= len(list(csv.DictReader(text.splitlines()))) < len(clips)


@pytest.mark.parametrize("target", ["full.csv", "full.parquet", "stdout", "missing/out.csv", "missing/out.parquet",
                                    "readonly/out.csv"])
def test_an_unwritable_output_is_one_line(folder, tmp_path, target):
    """/dev/full as --out (through a .csv or .parquet link) or as stdout, a folder that does not exist,
    one not writable."""
    stdout = subprocess.PIPE
    if target.startswith("full."):
        (tmp_path / target).symlink_to("/dev/full")
    if target.startswith("readonly"):
        (tmp_path / "readonly").mkdir()
        (tmp_path / "readonly").chmod(0o500)
        if os.access(tmp_path / "readonly", os.W_OK):  # root ignores the mode: nothing to test here then
            pytest.skip("running as a user who may write anywhere")
    args = ["--out", str(tmp_path / target)]
    if target == "stdout":
        args, stdout = [], open("/dev/full", "w")
    done = subprocess.run([EMOLIVE, "score", str(folder / "one.flac"), *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot write" in done.stderr


def test_a_small_full_disk_keeps_whole_rows(folder, tmp_path):
    """A file on a disk that fills up: the rows already written stay whole, the failed one is gone."""
    from emolive.engine.row_writers import TextRowWriter
    from emolive.engine.sinks.base import SinkError

    path = tmp_path / "rows.csv"
    with open(path, "wb", buffering=0) as f:
        writer = TextRowWriter(f, ["path", "activation", "error"], "csv", str(path))
        writer.write([{"path": "a.wav", "activation": 4.0, "error": ""}])
        size = path.stat().st_size
        real_write = os.write

        def short_then_full(fd, data):
            if fd == f.fileno():
                if len(data) > 10:
                    return real_write(fd, bytes(data[:10]))  # the OS takes part of the row...
                raise OSError(28, "No space left on device")  # ...then the disk is full
            return real_write(fd, data)
        import emolive.engine.sinks.lines as lines_module
        original = lines_module.os.write
        lines_module.os.write = short_then_full
        try:
            with pytest.raises(SinkError, match="No space left"):
                writer.write([{"path": "b.wav", "activation": 5.0, "error": ""}] * 3)
        finally:
            lines_module.os.write = original
    assert path.stat().st_size == size and path.read_text().endswith("a.wav,4.0,\n")


def test_jobs_are_capped_and_odd_entries_of_a_folder_are_reported(folder, tmp_path, capsys):
    root = tmp_path / "odd"
    root.mkdir()
    shutil.copy(folder / "one.flac", root / "good.flac")
    os.mkfifo(root / "pipe.wav")
    (root / "gone.flac").symlink_to(tmp_path / "nowhere.flac")
    out = tmp_path / "odd.csv"
    assert main(["score", str(root), "--out", str(out), "--jobs", "1000"]) == 0
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert set(rows) == {"good.flac", "pipe.wav", "gone.flac"}
    assert rows["good.flac"]["error"] == ""
    assert "not a regular file" in rows["pipe.wav"]["error"] and "missing file" in rows["gone.flac"]["error"]
    assert "--jobs 1000: using" in capsys.readouterr().err


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    """38 s of speech whose FLAC stream is overwritten with noise 60 % of the way in: libsndfile
    decodes the first ~24 s, then fails."""
    import soundfile as sf

    from tests.conftest import read_audio

    path = tmp_path_factory.mktemp("damaged") / "damaged.flac"
    sf.write(path, np.concatenate([read_audio(p) for p in corpus_files("ravdess", limit=16)]), 16000)
    data = bytearray(path.read_bytes())
    start = int(len(data) * 0.6)
    data[start:start + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_file_delivers_what_was_read_then_the_error(damaged, tmp_path):
    model = emolive.load_model("student")
    with pytest.raises(emolive.PartialAnalysis, match="damaged") as err:
        emolive.analyze(damaged, model=model)
    partial = err.value.analysis
    assert isinstance(err.value, emolive.EmoliveError) and "\n" not in str(err.value)
    # every window that fits in the ~24 s read before the damage (3 s windows, 0.5 s hop)
    assert partial.whole is not None and len(partial.windows) >= 40
    assert partial.windows[-1]["end"] <= 25.0
    out = tmp_path / "rows.csv"
    assert main(["score", str(damaged), "--out", str(out), "--per", "window"]) == 0
    rows = read_csv(out)
    assert len(rows) == len(partial.windows) and all("damaged" in r["error"] for r in rows)
    assert [float(r["activation"]) for r in rows] == pytest.approx([w["activation"] for w in partial.windows])
