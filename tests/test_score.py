"""`emolive score`: folders, manifests and files to one table; bad files are rows with an error; Ctrl-C keeps rows."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

import emolive
from emolive.engine.batch import collect_inputs
from emolive.engine.cli import main
from tests.conftest import CORPORA, OWN_MOUNTS_MISSING, corpus_files, interruptible

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


def test_a_folder_search_takes_the_endings_files_carry_and_linked_folders_once(tmp_path):
    """NIST SPHERE (.sph, the LDC corpora's), AIFF-C, AU (.snd), IRCAM (.sf) and WavPack (.wv) are read when
    named, but the search knew only libsndfile's format names (.nist, .ircam) and skipped them; a linked
    folder (sessions kept elsewhere) was skipped too. A link back up the tree is followed once."""
    clip = corpus_files("emodb", limit=1)[0]
    speech, rate = sf.read(clip, dtype="int16")
    for name, kind in [("a.sph", "NIST"), ("b.aifc", "AIFF"), ("c.snd", "AU"), ("d.sf", "IRCAM"), ("g.wave", "WAV")]:
        sf.write(tmp_path / name, speech, rate, format=kind)  # .wave: WAV's registered other ending, skipped too
    with av.open(str(tmp_path / "e.wv"), "w") as out:
        stream = out.add_stream("wavpack", rate=rate, layout="mono", format="s16p")  # its default is 8-bit
        frame = av.AudioFrame.from_ndarray(speech[None, :], format="s16p", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    shutil.copy(clip, elsewhere / "f.flac")
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "linked").symlink_to(elsewhere)
    (tmp_path / "sessions" / "up").symlink_to(tmp_path)
    found = collect_inputs([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.sph", "b.aifc", "c.snd", "d.sf", "e.wv", "g.wave", "sessions/linked/f.flac"]
    whole = [emolive.analyze(path).whole["activation"] for path in found]
    assert whole == [whole[0]] * len(found)  # one recording, losslessly stored seven ways


def test_a_folder_tree_deeper_than_pythons_recursion_limit_is_searched(tmp_path):
    """Python 3.11's os.walk recurses: a tree 1,100 folders deep ended in a RecursionError traceback,
    without a row even for the file near the top."""
    clip, folder, root = corpus_files("emodb", limit=1)[0], tmp_path / "tree", tmp_path / "tree"
    try:
        for depth in range(1100):
            folder = folder / "a"
            folder.mkdir(parents=True)
            if depth in (10, 1099):
                shutil.copy(clip, folder / f"x{depth}.flac")
        assert sorted(p.name for p in collect_inputs([root])) == ["x10.flac", "x1099.flac"]
    finally:  # from the bottom up: shutil.rmtree recurses too, and pytest's clean-up of old runs would fail on it
        while folder != tmp_path:
            for entry in folder.iterdir():
                entry.unlink()
            folder.rmdir()
            folder = folder.parent


def test_a_second_score_into_a_file_being_written_is_refused_and_the_first_stays_whole(tmp_path):
    """Two runs into one --out interleaved their rows with runs of NUL bytes, and both exited 0."""
    out = tmp_path / "rows.csv"
    manifest = CORPORA / "ravdess" / "manifest.csv"  # 1,434 files: the first run is still writing
    first = subprocess.Popen([EMOLIVE, "score", str(manifest), "--per", "window", "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([EMOLIVE, "score", str(corpus_files("emodb", limit=1)[0]), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert first.poll() is None, "the first run ended before the second started: nothing was tested"
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (f"emolive: error: cannot write {out}: another process is "
                                                      "writing it (another emolive score?); give another --out")
    assert first.wait(timeout=600) == 0, first.stderr.read()
    rows = read_csv(out)
    assert {row["path"] for row in rows} == {str(path) for path in collect_inputs([manifest])}
    assert b"\0" not in out.read_bytes() and all(None not in row for row in rows)  # whole rows, one header


def test_score_a_folder_one_row_per_file_and_a_bad_file_is_a_row_with_its_error(folder, tmp_path, capsys,
                                                                               one_torch_thread):
    out = tmp_path / "results.csv"
    assert main(["score", str(folder), "--out", str(out)]) == 1  # a file failed: the table is whole
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
    assert all(r["path"] == str(clip) and r["error"] is None for r in rows)
    assert [r["start"] for r in rows] == [w["start"] for w in windows]
    # an error row's estimates are null, not "": a column of numbers stays numbers (pandas read them as text)
    missing = tmp_path / "missing.flac"
    assert main(["-q", "score", str(clip), str(missing), "--out", str(out)]) == 1
    good, bad = [json.loads(line) for line in out.read_text().splitlines()]
    assert isinstance(good["activation"], float) and good["speech"] is True and good["error"] is None
    assert bad["activation"] is None and bad["speech"] is None and "not found" in bad["error"]


def test_channel_scores_one_side_of_every_file_in_workers_too(folder, tmp_path, one_torch_thread):
    """A call recorded one side per channel: --channel 2 scores the second side alone (the mono mix
    of a voice and a silent side is 6 dB quieter and warned about), in worker processes as here."""
    voice = sf.read(folder / "one.flac", dtype="float32")[0]
    calls = tmp_path / "calls"
    calls.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(calls / name, np.stack([np.zeros_like(voice), voice], 1), 16000, subtype="FLOAT")
    alone, mixed = tmp_path / "alone.csv", tmp_path / "mixed.csv"
    assert main(["-q", "score", str(folder / "one.flac"), "--out", str(alone)]) == 0
    for jobs in ("1", "2"):
        picked = tmp_path / f"picked{jobs}.csv"
        assert main(["-q", "score", str(calls), "--channel", "2", "--jobs", jobs, "--out", str(picked)]) == 0
        assert [row["valence"] for row in read_csv(picked)] == [read_csv(alone)[0]["valence"]] * 2
    result = subprocess.run([EMOLIVE, "score", str(calls / "a.wav"), "--out", str(mixed)], capture_output=True,
                            text=True, timeout=120)
    assert "channel 1 of 2 is silent throughout, so the mono mix is 6 dB quieter than channel 2" in result.stderr
    assert read_csv(mixed)[0]["valence"] != read_csv(alone)[0]["valence"]
    # a channel named twice fails the batch once, before a row (it was every row's error, then exit 1)
    twice = subprocess.run([EMOLIVE, "score", str(calls), "--channel", "2", "--channel", "2"], capture_output=True,
                           text=True, timeout=120)
    assert twice.returncode == 1 and twice.stdout == "" and twice.stderr == (
        "emolive: error: --channel: channel 2 is given twice; name each channel once\n"), twice


def test_a_manifest_lists_files_relative_to_its_folder(folder, tmp_path):
    manifest = folder / "a" / "manifest.csv"
    manifest.write_text("path,emotion\ntwo.flac,anger\nb/three.flac,joy\nmissing.flac,joy\n")
    assert collect_inputs([manifest]) == [folder / "a" / "two.flac", folder / "a" / "b" / "three.flac",
                                          folder / "a" / "missing.flac"]
    # spaces a spreadsheet left after a name: that file (its error named a file that exists, spaces dropped)
    manifest.write_text("path,emotion\ntwo.flac   ,anger\n")
    assert collect_inputs([manifest]) == [folder / "a" / "two.flac"]
    (tmp_path / "bad.csv").write_text("file\nx.wav\n")
    with pytest.raises(emolive.EmoliveError, match=r"missing column\(s\) path"):
        collect_inputs([tmp_path / "bad.csv"])


def test_parallel_jobs_give_the_same_rows(folder, tmp_path, one_torch_thread):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["-q", "score", str(folder), "--out", str(one)]) == 1
    assert main(["-q", "score", str(folder), "--jobs", "2", "--out", str(two)]) == 1
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
    assert main(["score", str(root), "--out", str(out), "--jobs", "1000"]) == 1
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert set(rows) == {"good.flac", "pipe.wav", "gone.flac"}
    assert rows["good.flac"]["error"] == ""
    assert "not a regular file" in rows["pipe.wav"]["error"] and "missing file" in rows["gone.flac"]["error"]
    assert "--jobs 1000: using" in capsys.readouterr().err


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    """38 s of speech whose FLAC stream is overwritten with noise 60 % of the way in: libsndfile
    decodes the first ~24 s, then fails; FFmpeg decodes on past the damaged frame."""
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
    # every window of the 38 s (it had stopped at the ~24 s before the damage); the frame's 0.256 s that
    # could not be decoded is heard as silence, so the windows after it keep their times (they came early)
    assert partial.whole is not None and len(partial.windows) == 71 and partial.windows[-1]["end"] > 37.0
    assert re.search(r"damaged near 2\d\.\d\d s: 0\.256 s of its audio there could not be decoded and is silence in "
                     "its place", str(err.value)), err.value
    out = tmp_path / "rows.csv"
    assert main(["score", str(damaged), "--out", str(out), "--per", "window"]) == 1
    rows = read_csv(out)
    assert len(rows) == len(partial.windows) and all("damaged" in r["error"] for r in rows)
    assert [float(r["activation"]) for r in rows] == pytest.approx([w["activation"] for w in partial.windows])


def test_an_os_error_under_one_file_is_its_row_and_a_bug_stays_a_traceback(folder, tmp_path, monkeypatch):
    """An OSError while one file is read (here /proc/self/mem's I/O error, and a permission error
    even root meets on a network share) is that file's row; the batch goes on. A bug is not caught."""
    import emolive.engine.analysis as analysis

    locked, real_source = folder / "a" / "two.flac", analysis.FileSource

    def file_source(path, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_source(path, **kwargs)

    monkeypatch.setattr(analysis, "FileSource", file_source)
    out = tmp_path / "rows.csv"
    assert main(["-q", "score", "/proc/self/mem", str(locked), str(folder / "one.flac"), "--out", str(out)]) == 1
    mem, two, one = read_csv(out)
    assert "Input/output error" in mem["error"] and mem["activation"] == ""
    assert two["error"] == f"cannot read {locked}: Permission denied" and two["activation"] == ""
    assert one["error"] == "" and 1.0 <= float(one["activation"]) <= 7.0

    def buggy_source(path, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(analysis, "FileSource", buggy_source)
    with pytest.raises(TypeError, match="a bug"):
        main(["-q", "score", str(folder / "one.flac"), "--out", str(out)])


@pytest.mark.parametrize("content, message", [
    ("path,speaker\n\xe9t\xe9.wav,s1\n".encode("latin-1"), r"bad\.csv:2: byte 0xe9 is not UTF-8; save the manifest as"),
    (b"speaker,path\ns1\ns2,one.flac\n", r"bad\.csv:2: 1 field\(s\), the header has 2"),
    (b"path,speaker\none.flac,s1,extra\n", r"bad\.csv:2: 3 field\(s\), the header has 2"),
    (b"path,speaker\n,s1\n", r"bad\.csv:2: the path is empty"),
    # it read the rest of the file as one path, newline and all: "audio file not found"
    (b'path\n"one.flac\n', r"bad\.csv:2: a quote opened in this row is never closed"),
    (b"file\nx.wav\n", r"missing column\(s\) path; a manifest needs path \(found file\)"),
    (None, r"bad\.csv: cannot read the manifest \(Input/output error\)"),  # a link to /proc/self/mem
    ("fifo", r"bad\.csv: cannot read the manifest \(not a regular file\)"),  # its read would wait forever
])
def test_a_malformed_manifest_is_one_line_naming_the_file_and_line(tmp_path, capsys, content, message):
    manifest = tmp_path / "bad.csv"
    if content is None:
        manifest.symlink_to("/proc/self/mem")
    elif content == "fifo":
        os.mkfifo(manifest)
    else:
        manifest.write_bytes(content)
    with pytest.raises(emolive.EmoliveError, match=message):
        collect_inputs([manifest])
    assert main(["score", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("emolive: error: ") and len(err.strip().splitlines()) == 1


def test_a_manifest_with_a_byte_order_mark_is_read(folder, tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark: the first column is still `path`."""
    manifest = folder / "a" / "excel.csv"
    manifest.write_bytes("path,emotion\r\ntwo.flac,joie\r\n".encode("utf-8-sig"))
    assert collect_inputs([manifest]) == [folder / "a" / "two.flac"]


def test_a_score_table_read_back_as_a_manifest_finds_its_files(folder, tmp_path, monkeypatch, one_torch_thread):
    """Paths given relative to the current folder are written relative to the table's folder, as a
    manifest's are read; an absolute path stays as it is; on stdout, paths stay as given."""
    (tmp_path / "mix").mkdir()
    (tmp_path / "results").mkdir()
    shutil.copy(folder / "one.flac", tmp_path / "mix" / "ref.flac")
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "score", "mix/ref.flac", str(folder / "a" / "two.flac"), "--out", "results/r.csv"]) == 0
    first = read_csv(tmp_path / "results" / "r.csv")
    assert [r["path"] for r in first] == [os.path.join("..", "mix", "ref.flac"), str(folder / "a" / "two.flac")]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["-q", "score", "../results/r.csv", "--out", "again.csv"]) == 0
    again = read_csv(tmp_path / "elsewhere" / "again.csv")
    assert [r["error"] for r in again] == ["", ""]
    assert [r["activation"] for r in again] == [r["activation"] for r in first]
    assert [r["path"] for r in again] == [os.path.join("..", "mix", "ref.flac"), str(folder / "a" / "two.flac")]


@pytest.mark.parametrize("options", [["--per", "window", "--hop", "0.25"], ["--window", "0.01"], ["--hop", "nan"],
                                     ["--jobs", "2", "--window", "61"]])
def test_window_options_that_fit_no_file_fail_once_before_any_row(folder, tmp_path, capsys, options):
    out = tmp_path / "rows.csv"
    assert main(["score", str(folder / "one.flac"), str(folder / "a" / "two.flac"), *options, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("emolive: error: ") and " (--" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_output_that_is_one_of_the_inputs_is_refused(folder, tmp_path, capsys):
    manifest = tmp_path / "labels.csv"
    text = f"path,emotion\n{folder / 'one.flac'},anger\n"
    manifest.write_text(text)
    spelled_otherwise = str(tmp_path / ".." / tmp_path.name / "labels.csv")
    assert main(["score", str(manifest), "--out", spelled_otherwise]) == 1
    assert capsys.readouterr().err.strip() == (f"emolive: error: --out {spelled_otherwise} is also an input "
                                               f"({manifest}): write to another file")
    assert manifest.read_text() == text
    # the same for stream's --csv beside the recording it reads: it emptied the recording
    recording = tmp_path / "recording.flac"
    recording.write_bytes((folder / "one.flac").read_bytes())
    assert main(["stream", "--source", str(recording), "--no-publish", "--csv", str(recording)]) == 1
    assert "--csv" in capsys.readouterr().err and recording.read_bytes() == (folder / "one.flac").read_bytes()


def test_a_file_without_a_speech_turn_still_has_its_row(tmp_path, one_torch_thread):
    """--per turn: a recording with no speech turn is one row, its span with `speech` False and no
    estimates (no error: it was read whole), as emolive.analyze's table gives it."""
    import soundfile as sf

    from tests.conftest import read_audio

    quiet, spoken = tmp_path / "quiet.flac", tmp_path / "spoken.flac"
    sf.write(quiet, np.zeros(3 * 16000, np.float32), 16000)
    sf.write(spoken, read_audio(corpus_files("ravdess", limit=1)[0]), 16000)
    out = tmp_path / "turns.csv"
    assert main(["-q", "score", str(quiet), str(spoken), "--per", "turn", "--out", str(out)]) == 0
    rows = read_csv(out)
    assert [Path(r["path"]).name for r in rows] == ["quiet.flac", "spoken.flac"]
    assert rows[0]["speech"] == "False" and rows[0]["error"] == "" and rows[0]["model"] == "student"
    assert float(rows[0]["end"]) == pytest.approx(3.0, abs=0.025)
    assert rows[0]["activation"] == rows[0]["label"] == rows[0]["p_sad"] == ""
    assert rows[1]["speech"] == "True" and float(rows[1]["activation"]) > 0
    records = emolive.analyze(quiet).to_records("turn")
    assert [{k: str(v) for k, v in r.items() if k != "file"} for r in records] == \
        [{k: v for k, v in rows[0].items() if k != "path"}]


def test_names_posix_allows_are_scored_and_odd_entries_are_rows_not_the_end_of_the_batch(folder, tmp_path):
    """A name that is not UTF-8 reached libsndfile through soundfile's strict encoding, and a link loop or
    a name over 255 bytes made Python 3.11's is_dir raise: each ended the whole batch with a traceback.
    A name holding '\\r' went out bare (csv quotes only its own line end), so the table read back as a
    manifest had one row too many."""
    root = tmp_path / "odd"
    root.mkdir()
    shutil.copy(folder / "one.flac", os.fsencode(root) + b"/not\xffutf8.flac")
    # the first's text, had a backslash not been escaped
    shutil.copy(folder / "a" / "two.flac", root / "not\\xffutf8.flac")
    shutil.copy(folder / "one.flac", root / "take\r1.flac")
    (root / "loop.flac").symlink_to("loop.flac")
    (root / "loop").symlink_to("loop")  # a loop without an audio name is passed over
    long_name = tmp_path / ("a" * 300 + ".flac")
    out = tmp_path / "odd.csv"
    assert main(["score", str(root), str(long_name), "--out", str(out)]) == 1
    rows = {Path(row["path"]).name: row for row in read_csv(out)}
    # a name's bytes' text, in any locale: a byte that is not UTF-8 as \xNN, a backslash as \\
    assert set(rows) == {"not\\xffutf8.flac", "not\\\\xffutf8.flac", "take\r1.flac", "loop.flac", long_name.name}
    scored = [rows[name] for name in ("not\\xffutf8.flac", "take\r1.flac")]
    assert scored[0]["activation"] == scored[1]["activation"] != rows["not\\\\xffutf8.flac"]["activation"] != ""
    assert rows["loop.flac"]["error"].endswith("Too many levels of symbolic links")
    assert rows[long_name.name]["error"].endswith("File name too long")
    again = tmp_path / "again.csv"
    assert main(["score", str(out), "--out", str(again)]) == 1  # the table as a manifest: the same five rows
    assert len(read_csv(again)) == 5 and {row["path"] for row in read_csv(again)} >= {str(root / "take\r1.flac")}
    # each name finds its own file again: the one that is no UTF-8 was "audio file not found", and an unescaped
    # backslash had made the two names one
    assert {Path(row["path"]).name: (row["activation"], row["error"]) for row in read_csv(again)} == \
        {Path(row["path"]).name: (row["activation"], row["error"]) for row in read_csv(out)}
    # Parquet writes the name as the text tables do: it was a traceback that ended the batch
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    assert main(["score", str(root), str(long_name), "--out", str(tmp_path / "odd.parquet")]) == 1
    assert {Path(p).name for p in pq.read_table(tmp_path / "odd.parquet")["path"].to_pylist()} == set(rows)
    # the API's table holds the names as score's does: pandas' string dtype refused them (the batch's table was
    # lost), and then its reset_index, to_csv and to_parquet
    frame = emolive.analyze(str(root)).to_dataframe("file").reset_index()
    assert set(Path(f).name for f in frame["file"]) == set(rows) - {long_name.name}
    frame.to_csv(tmp_path / "frame.csv")


def test_a_name_with_spaces_at_its_ends_comes_back_from_its_table(folder, tmp_path, monkeypatch):
    """' take 1.flac' was written bare and read back as 'take 1.flac' (a reader skips initial spaces): the
    table read as a manifest said "audio file not found". Now quoted, it finds its file."""
    (tmp_path / "in").mkdir()
    shutil.copy(folder / "one.flac", tmp_path / "in" / " take 1.flac")
    monkeypatch.chdir(tmp_path)  # relative names, as the table writes them for a table in their folder
    assert main(["score", "in", "--out", "in/table.csv"]) == 0
    assert [row["path"] for row in read_csv(tmp_path / "in" / "table.csv")] == [" take 1.flac"]
    assert main(["score", "in/table.csv", "--out", "again.csv"]) == 0
    assert [row["path"] for row in read_csv(tmp_path / "again.csv")] == ["in/ take 1.flac"]


@pytest.mark.parametrize("closed", [">&-", "2>&-"])
def test_a_closed_standard_stream_is_one_line_or_no_matter(folder, tmp_path, closed):
    """`>&-`: Python's sys.stdout is None, and writing the table raised AttributeError. `2>&-`: tqdm
    failed on sys.stderr being None, after the header: the batch ended with no message at all."""
    out = tmp_path / "rows.csv"
    target = "-" if closed == ">&-" else str(out)
    run = subprocess.run(["sh", "-c", f'exec "$@" {closed}', "sh", EMOLIVE, "score", str(folder / "one.flac"),
                          "--out", target], capture_output=True, text=True, timeout=120)
    if closed == ">&-":
        assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == (
            "emolive: error: cannot write stdout: standard output is closed"), run.stderr
    else:
        assert run.returncode == 0 and len(read_csv(out)) == 1 and read_csv(out)[0]["error"] == ""


def test_a_reader_that_goes_away_from_models_is_one_line():
    """`emolive models | head -1` ended with a BrokenPipeError traceback."""
    proc = subprocess.Popen([EMOLIVE, "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before it has printed a line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert err.strip().splitlines() == ["emolive: error: the reader of standard output closed its end of the pipe"]


@pytest.mark.skipif(OWN_MOUNTS_MISSING is not None, reason=OWN_MOUNTS_MISSING or "")
def test_a_parquet_table_that_cannot_be_finished_is_removed_not_left_unreadable(folder, tmp_path):
    """A full disk left an 8 kB Parquet file without its footer, which no reader can open (a 24 kB
    tmpfs in this test's own mount namespace)."""
    pytest.importorskip("pyarrow")
    disk = tmp_path / "full"
    disk.mkdir()
    links = tmp_path / "many"
    links.mkdir()
    for i in range(40):
        (links / f"{i}.flac").symlink_to(folder / "one.flac")
    mount = f"mount -t tmpfs -o size=24k tmpfs {disk} && head -c 16384 /dev/zero > {disk}/fill && " \
            f'"$@"; code=$?; ls {disk}; exit $code'
    run = subprocess.run(["unshare", "-Urm", "sh", "-c", mount, "sh", EMOLIVE, "score", str(links),
                          "--out", str(disk / "out.parquet")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and run.stdout.split() == ["fill"], run.stdout + run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(f"emolive: error: cannot write {disk / 'out.parquet'}: ")
    assert run.stderr.strip().endswith("removed it, since a Parquet file holds no readable row without its footer")


def test_sigterm_while_a_fifo_out_waits_for_its_reader_ends_as_a_batch_does(folder, tmp_path):
    """Opening a FIFO --out waits for its reader; SIGTERM there exited 130 without a word, where a
    batch says how far it got and exits 143."""
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    score = subprocess.Popen([EMOLIVE, "score", str(folder / "one.flac"), "--out", str(fifo)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wchan, deadline = Path(f"/proc/{score.pid}/wchan"), time.monotonic() + 60
        while wchan.read_text() != "wait_for_partner" and time.monotonic() < deadline:  # Linux: a FIFO's open waits
            time.sleep(0.1)
        score.send_signal(signal.SIGTERM)
        _, err = score.communicate(timeout=30)
    finally:
        score.kill()
    assert score.returncode == 143
    assert err.strip().splitlines()[-1] == f"emolive: terminated: 0 of 1 files scored; their rows are in {fifo}"


def test_a_folder_that_cannot_be_searched_is_a_row_and_fails_the_batch(folder, tmp_path):
    """Its files went missing from the table, with a warning and exit status 0: a script checking the
    status lost them. A folder deeper than PATH_MAX cannot be searched by any user."""
    root = tmp_path / "deep"
    root.mkdir()
    shutil.copy(folder / "one.flac", root / "one.flac")
    fd = os.open(root, os.O_RDONLY)
    for _ in range(18):  # 18 names of 250 bytes: beyond PATH_MAX (4096), reached one level at a time
        os.mkdir("d" * 250, dir_fd=fd)
        deeper = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(fd)
    out = tmp_path / "deep.csv"
    assert main(["score", str(root), "--out", str(out)]) == 1
    scored, searched = sorted(read_csv(out), key=lambda row: row["error"])
    assert scored["activation"] != "" and not scored["error"] and searched["activation"] == ""
    assert searched["path"].endswith("d" * 250) and searched["error"].endswith("File name too long")
    assert list(emolive.analyze(str(root)).errors.values()) == [searched["error"]]


def test_workers_that_cannot_start_in_a_deleted_folder_say_so_and_leave_the_table(folder, tmp_path):
    """Run from a folder deleted under it, `--jobs 2` said "[Errno 2] No such file or directory" after
    emptying --out, and the API raised a bare FileNotFoundError."""
    out = tmp_path / "kept.csv"
    out.write_text("precious\n")
    gone = tmp_path / "gone"
    gone.mkdir()
    code = ("import os, sys\n"
            f"os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})\n"
            "from emolive.engine.cli import main\n"
            f"sys.exit(main(['score', {str(folder / 'one.flac')!r}, {str(folder / 'a' / 'two.flac')!r}, '--jobs', '2', "
            f"'--out', {str(out)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and out.read_text() == "precious\n", done.stderr
    assert done.stderr.strip().splitlines() == ["emolive: error: 2 worker processes cannot start in the current "
                                                "folder, which no longer exists (deleted?): change to another "
                                                "folder, or analyse with one worker"]


def test_an_error_spells_a_name_as_the_path_column_does(tmp_path):
    """The path column wrote an empty file's name as `bad\\xfe.flac`, its error as `bad\\udcfe.flac`, and
    JSON lines held a lone surrogate escape, which strict JSON readers refuse."""
    root = tmp_path / "in"
    root.mkdir()
    with open(os.fsencode(root) + b"/bad\xfe.flac", "wb"):
        pass
    for out, rows in ((tmp_path / "t.csv", read_csv), (tmp_path / "t.jsonl", lambda path: [
            json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])):
        assert main(["score", str(root), "--out", str(out)]) == 1
        [row] = rows(out)
        assert "\\udc" not in out.read_text(encoding="utf-8")  # no surrogate, nor its escape
        assert row["path"].endswith("bad\\xfe.flac") and row["error"] == f"{row['path']} is empty (0 bytes)"
