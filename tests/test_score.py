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
    assert capsys.readouterr().err.strip() == "emolive: error: --out results.xlsx: give a .csv or .jsonl file name"
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
