"""Batch analysis from Python (lists, folders, manifests, workers), stretches of a file, the
(file, start, end) table index, score's label/model columns and Parquet output, and the two
whole-recording figures (one pass vs the mean of the speech windows)."""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import emolive
from emolive.engine.cli import main
from tests.conftest import corpus_files, read_audio

DIMENSIONS = ("activation", "valence", "dominance")


@pytest.fixture(scope="module")
def student(one_torch_thread):
    return emolive.load_model("student")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three real clips (one in a subfolder) and a broken file."""
    root = tmp_path_factory.mktemp("batch")
    (root / "sub").mkdir()
    for target, clip in zip([root / "a.flac", root / "b.flac", root / "sub" / "c.flac"],
                            corpus_files("ravdess", every=300, limit=3)):
        shutil.copy(clip, target)
    (root / "broken.wav").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory, folder) -> Path:
    """The three clips in a row (about 7 s): a recording several windows long."""
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(path, np.concatenate([read_audio(f) for f in (folder / "a.flac", folder / "b.flac",
                                                            folder / "sub" / "c.flac")]), 16000)
    return path


def values(estimates: list) -> list[list[float]]:
    """The estimates' numbers, without the wall-clock fields that differ from run to run."""
    return [[e[name] for name in DIMENSIONS] + [e["start"], e["end"]] for e in estimates]


def test_a_list_a_folder_and_a_manifest_give_one_analysis_per_file_in_order(student, folder):
    files = [folder / "b.flac", folder / "a.flac", folder / "broken.wav"]
    batch = emolive.analyze(files, model=student)
    assert isinstance(batch, emolive.Analyses) and [a.file for a in batch] == [str(f) for f in files]
    for analysis, path in zip(batch[:2], files):
        alone = emolive.analyze(path, model=student)
        assert values(analysis.windows) == values(alone.windows) and analysis.error == ""
        assert values([analysis.whole]) == values([alone.whole])
    assert list(batch.errors) == [str(folder / "broken.wav")] and "cannot read" in batch.errors[str(folder / "broken.wav")]
    by_folder = emolive.analyze(folder, model=student)
    assert sorted(Path(a.file).name for a in by_folder) == ["a.flac", "b.flac", "broken.wav", "c.flac"]
    manifest = folder / "list.csv"
    manifest.write_text("path,emotion\nsub/c.flac,sad\na.flac,happy\n")
    assert [Path(a.file).name for a in emolive.analyze(manifest, model=student)] == ["c.flac", "a.flac"]


def test_workers_give_the_same_analyses(folder):
    """A bundle's path as a pathlib.Path was refused with workers ("not a plugin"), and taken without."""
    from emolive.plugins.student import DEFAULT_BUNDLE

    one = emolive.analyze(folder, model="student")
    two = emolive.analyze(folder, model=Path(DEFAULT_BUNDLE), num_workers=2)
    assert [a.file for a in one] == [a.file for a in two] and [a.error for a in one] == [a.error for a in two]
    for a, b in zip(one, two):  # the same float32 model in another process: equal up to summation order
        assert [w["activation"] for w in a.windows] == pytest.approx([w["activation"] for w in b.windows], abs=1e-5)
    with pytest.raises(emolive.EmoliveError, match="num_workers"):
        emolive.analyze(folder, model=emolive.load_model("student"), num_workers=2)


def test_a_script_with_workers_but_no_main_guard_stops_with_one_error_naming_the_guard(folder, tmp_path):
    """Each spawned worker imports the script again, so an unguarded call would start workers of its
    own there: multiprocessing's Pool then replaced the dying workers for ever (a hang at full CPU).
    Now the workers refuse, the pool is seen broken, and the script ends with the fix in one line;
    the same call under a main guard scores."""
    import subprocess
    import sys

    call = f"import emolive\nbatch = emolive.analyze({str(folder)!r}, num_workers=2)\nprint(len(batch))\n"
    unguarded, guarded = tmp_path / "unguarded.py", tmp_path / "guarded.py"
    unguarded.write_text(call)
    guarded.write_text("if __name__ == '__main__':\n" + "".join(f"    {line}\n" for line in call.splitlines()))
    failed = subprocess.run([sys.executable, str(unguarded)], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.strip().splitlines()[-1].endswith('must make that call under `if __name__ == "__main__":`, '
                                                           "because each worker process imports the script again")
    assert failed.stderr.count("Traceback") == 1  # the script's own; each worker's repeated it before
    scored = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, timeout=120)
    assert scored.returncode == 0 and scored.stdout == "4\n"


def test_workers_that_could_never_start_are_refused_saying_why(folder):
    """Inside a multiprocessing.Pool worker (daemonic: no children allowed) multiprocessing raised a bare
    AssertionError; a guarded script piped to `python -` was told to add the guard it had."""
    import subprocess
    import sys

    pooled = ("import multiprocessing, emolive\n"
              f"def work(_):\n    return emolive.analyze({str(folder)!r}, num_workers=2)\n"
              "if __name__ == '__main__':\n    with multiprocessing.Pool(1) as pool:\n        pool.map(work, [0])\n")
    piped = f"import emolive\nif __name__ == '__main__':\n    emolive.analyze({str(folder)!r}, num_workers=2)\n"
    for script, stdin, why in ((["-c", pooled], None, "cannot start inside a daemonic process"),
                               (["-"], piped, "<stdin> is not a file (a script read from standard input)")):
        result = subprocess.run([sys.executable, *script], input=stdin, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and "emolive.engine.batch.BatchError" in result.stderr, result.stderr
        assert why in result.stderr.strip().splitlines()[-1]


def test_a_model_that_does_not_load_in_the_workers_is_its_own_one_line_error(folder, tmp_path):
    """A mistyped model name (or a broken bundle) failed in each worker's initializer: a traceback per
    worker, then a BatchError advising a main guard the script had. num_workers=1's error is the one."""
    import subprocess
    import sys

    script = tmp_path / "guarded.py"
    script.write_text("import emolive\nif __name__ == '__main__':\n"
                      f"    try:\n        emolive.analyze({str(folder)!r}, model='nosuch', num_workers=2)\n"
                      "    except emolive.EmoliveError as error:\n        print(error)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.stdout.startswith("no model named 'nosuch' and no bundle at that path; known models:"), run.stdout
    assert "Traceback" not in run.stderr, run.stderr


def test_a_file_too_long_for_the_memory_left_is_its_row_and_the_batch_goes_on(student, folder, monkeypatch, capsys):
    """Under `ulimit -v` a long file's numpy allocation failed: a traceback ended `emolive score`, and the
    short file after it got no row."""
    from emolive.engine import batch
    from emolive.engine.cli import main

    files = sorted(str(p) for p in folder.rglob("*.flac"))[:2]
    real = batch.analyze_input

    def short_of_memory(path, *args, **kwargs):
        if str(path) == files[0]:
            raise MemoryError("Unable to allocate 2.69 MiB")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "analyze_input", short_of_memory)
    analyses = emolive.analyze(files, model=student)
    assert analyses[0].error == f"out of memory analysing {files[0]}" and analyses[1].error == ""
    assert main(["score", *files]) == 1
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 3 and rows[1].endswith(f"out of memory analysing {files[0]}")


def test_workers_end_when_the_batch_they_serve_is_killed(tmp_path):
    """SIGKILL of `emolive score --jobs 2` left its workers running for good, holding its stdout open, so
    a caller reading that stdout to its end waited for ever."""
    import signal
    import subprocess
    import sys
    import time

    def children(pid: int) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if entry.name.isdigit() and int(fields[1]) == pid:
                found.append(int(entry.name))
        return found

    paths = [str(p) for p in corpus_files("ravdess", every=8)] * 20  # far more work than the test waits for
    score = subprocess.Popen([str(Path(sys.executable).parent / "emolive"), "score", *paths, "--jobs", "2",
                              "--out", str(tmp_path / "t.csv")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers := [p for p in children(score.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(
                errors="replace")]) < 2:
            assert time.monotonic() < deadline and score.poll() is None
            time.sleep(0.2)
        time.sleep(1.0)  # working
        score.send_signal(signal.SIGKILL)
        score.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{p}").exists() and "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                  for p in workers):
            assert time.monotonic() < deadline, "the workers outlived the batch they served"
            time.sleep(0.2)
    finally:
        score.kill()
        for pid in workers:  # a failing run must not leave them behind either
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_worker_killed_mid_batch_is_said_to_be_killed_not_blamed_on_a_main_guard(tmp_path):
    """A worker that crashed (PyAV's 8-channel frames once did) or that the kernel killed for memory broke
    the pool, and a script that had its main guard was told to add one."""
    import subprocess
    import sys

    # 20 rounds of 180 files: about 40 s of work, where the kill comes 1 s after the workers start (one
    # round took 2 s here, and a faster machine had finished it before the kill: the test then saw no error)
    paths = [str(p) for p in corpus_files("ravdess", every=8)] * 20
    script = tmp_path / "guarded.py"
    script.write_text(
        "import multiprocessing, os, signal, threading, time\nimport emolive\n\n"
        "def kill_a_worker():\n"
        "    while not multiprocessing.active_children():\n        time.sleep(0.05)\n"
        "    time.sleep(1.0)\n    os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)\n\n"
        "if __name__ == '__main__':\n"
        "    threading.Thread(target=kill_a_worker, daemon=True).start()\n"
        f"    try:\n        emolive.analyze({paths!r}, num_workers=2)\n"
        "    except emolive.EmoliveError as error:\n        print(error)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip() == ("the worker processes stopped before scoring every file; a worker was killed by "
                                  "SIGKILL (a crash in a decoder, or the machine out of memory)"), run.stdout + run.stderr


def test_a_stretch_is_checked_for_nan_in_itself_and_says_when_in_the_recording(student, long_recording, tmp_path):
    """A NaN outside the stretch does not stop it (it did: the whole source was checked before the
    cut); one inside is an error at its time in the recording, not in the stretch."""
    samples = read_audio(long_recording)
    samples[16000 * 5] = np.nan
    path = tmp_path / "nan_at_5s.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    clean = emolive.analyze(long_recording, model=student, start=5.5, end=7.5)
    for source, rate in ((path, None), (samples, 16000)):
        stretch = emolive.analyze(source, sample_rate=rate, model=student, start=5.5, end=7.5)
        assert values(stretch.windows) == values(clean.windows) and stretch.windows
        with pytest.raises(emolive.EmoliveError, match=r"non-finite sample \(NaN or Inf\) at 5\.000 s"):
            emolive.analyze(source, sample_rate=rate, model=student, start=1, end=7.5)


def test_a_nan_just_before_a_stretch_of_44_1_khz_audio_stays_outside_it(student, long_recording, tmp_path):
    """Resampled to 16 kHz, a NaN spread over the filter's ~30 ms: one sample before a stretch stopped it,
    and a NaN's time came early (4.960 s for 4.99998 s). It is resampled as 0 and put back as one NaN at
    its own time: outside the stretch it does not stop it, and inside it is said at its time."""
    import soxr

    high = soxr.resample(read_audio(long_recording), 16000, 44100).astype(np.float32)
    clean = emolive.analyze(high, sample_rate=44100, model=student, start=5, end=8)
    for before in (1, 100, 441):
        samples = high.copy()
        samples[44100 * 5 - before] = np.nan
        path = tmp_path / f"nan_{before}.wav"
        sf.write(path, samples, 44100, subtype="FLOAT")
        for source, rate in ((samples, 44100), (path, None)):
            stretch = emolive.analyze(source, sample_rate=rate, model=student, start=5, end=8)
            # one input sample read as 0 rather than its own value reaches the stretch's first ~1 ms through
            # the resampler's filter: the estimates move by float noise (5e-7 here), far below 1e-3
            np.testing.assert_allclose(values(stretch.windows), values(clean.windows), atol=1e-3, rtol=0)
            assert stretch.windows
    samples = high.copy()
    samples[round(44100 * 6.25)] = np.nan
    with pytest.raises(emolive.EmoliveError, match=r"non-finite sample \(NaN or Inf\) at 6\.250 s"):
        emolive.analyze(samples, sample_rate=44100, model=student)


def test_start_and_end_analyse_that_stretch_in_the_recording_s_times(student, long_recording):
    path = long_recording
    samples = read_audio(path)
    # the same samples as an array: the same estimates, moved by the stretch's start; the same bits on
    # every run, since both are batched from their first window (a stretch that was not, batched as
    # blocks arrived, differed by an ulp in about half of the runs)
    alone = emolive.analyze(samples[8000:96000], sample_rate=16000, model=student)
    for _ in range(4):
        part = emolive.analyze(path, model=student, start=0.5, end=6.0)
        assert len(part.windows) == len(alone.windows) > 0
        assert [w["start"] for w in part.windows] == pytest.approx([w["start"] + 0.5 for w in alone.windows])
        assert [w["valence"] for w in part.windows] == [w["valence"] for w in alone.windows]
    assert part.whole["start"] == 0.5 and part.whole["end"] == pytest.approx(6.0, abs=0.025)
    with pytest.raises(emolive.EmoliveError, match="nothing from start"):
        emolive.analyze(path, model=student, start=len(samples) / 16000 + 1)
    with pytest.raises(emolive.EmoliveError, match="0 <= start < end"):
        emolive.analyze(path, model=student, start=2.0, end=1.0)


def test_tables_are_indexed_by_file_start_and_end_with_a_top_label(student, folder):
    batch = emolive.analyze([folder / "a.flac", folder / "b.flac"], model=student)
    frame = batch.to_dataframe("window")
    assert list(frame.index.names) == ["file", "start", "end"]
    assert len(frame) == sum(len(a.windows) for a in batch)
    probabilities = frame[[f"p_{name}" for name in student.meta.class_names]].to_numpy()
    assert list(frame["label"]) == [student.meta.class_names[i] for i in probabilities.argmax(axis=1)]
    assert frame.index.get_level_values("file").unique().tolist() == [str(folder / "a.flac"), str(folder / "b.flac")]


def test_whole_is_one_pass_and_the_file_row_also_gives_the_speech_windows_mean(student, long_recording):
    analysis = emolive.analyze(long_recording, model=student)
    speech = [w for w in analysis.windows if w["speech"]]
    assert len(speech) >= 5
    row = analysis.to_records("file")[0]
    for name in DIMENSIONS:
        assert row[f"mean_{name}"] == pytest.approx(np.mean([w[name] for w in speech]), abs=1e-9)
        assert row[name] == analysis.whole[name]  # the one pass over the recording
    # two different summaries: on real speech they do not coincide
    assert max(abs(row[n] - row[f"mean_{n}"]) for n in DIMENSIONS) > 1e-3


def test_score_rows_name_the_label_and_model_and_parquet_holds_the_csv_rows(folder, tmp_path, one_torch_thread):
    import pandas  # both pinned in requirements-dev.txt: the test never skips
    as_csv, as_parquet = tmp_path / "rows.csv", tmp_path / "rows.parquet"
    assert main(["-q", "score", str(folder), "--out", str(as_csv)]) == 1  # broken.wav
    assert main(["-q", "score", str(folder), "--out", str(as_parquet)]) == 1
    with open(as_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    table = pandas.read_parquet(as_parquet)
    assert list(table.columns) == list(rows[0]) and len(table) == len(rows) == 4
    for row, (_, stored) in zip(rows, table.iterrows()):
        assert row["model"] == stored["model"] == "student" and row["path"] == stored["path"]
        if row["error"]:
            assert pandas.isna(stored["activation"]) and stored["error"] == row["error"] and row["label"] == ""
            continue
        assert float(row["activation"]) == stored["activation"] and row["label"] == stored["label"] != ""
        classes = [c for c in row if c.startswith("p_")]
        assert row["label"] == max(classes, key=lambda c: float(row[c]))[2:]
        assert float(row["mean_valence"]) == stored["mean_valence"]


def test_a_table_of_file_rows_keeps_no_windows_and_gives_the_same_row(student, long_recording, monkeypatch):
    """Memory per file stays bounded for `score --per file`: no window or turn is kept, the row is the
    same, and no model call is spent on the turns the row does not use (the spans the model saw are
    the full analysis's less one per turn)."""
    from emolive.engine.batch import ScoreOptions, analyze_file, file_rows

    spans: list[int] = []
    predict = student.predict_batch
    monkeypatch.setattr(student, "predict_batch", lambda features, samples: spans.append(len(features)) or
                        predict(features, samples))
    lean = analyze_file(long_recording, student, ScoreOptions(per="file"))
    lean_spans = sum(spans)
    full = analyze_file(long_recording, student, ScoreOptions(per="file", keep_all=True))
    assert lean.windows == [] and lean.turns == [] and len(full.windows) > 5 and len(full.turns) >= 2
    assert lean_spans == sum(spans) - lean_spans - len(full.turns)
    (got,), (want,) = file_rows(lean, "file"), file_rows(full, "file")
    assert got == want  # bit for bit: offline batches are fixed by the audio, not the reader's timing (engine.runner)
    clocks = ("wall_start", "wall_end", "latency_ms")  # when it was computed, not what
    assert {k: v for k, v in lean.whole.items() if k not in clocks} == {k: v for k, v in full.whole.items()
                                                                         if k not in clocks}  # seq too


def test_a_recording_longer_than_a_piece_is_the_length_weighted_mean_of_its_pieces(student, long_recording,
                                                                                   monkeypatch):
    """engine.whole: past MAX_PIECE_S the whole estimate is the pieces' one-pass predictions averaged
    by length (checked here with 2 s pieces against direct model calls on the same frames)."""
    import emolive.engine.whole as whole_module
    from emolive.engine.analysis import Analysis, Collector
    from emolive.engine.features import compute
    from emolive.engine.features.normalise import as_one_stream
    from emolive.engine.runner import Runner
    from emolive.engine.sources import FileSource

    samples = read_audio(long_recording)
    analysis = Analysis()
    monkeypatch.setattr(whole_module, "MAX_PIECE_S", 2.0)
    with FileSource(long_recording, block_size=8000) as source:
        Runner(source, student, [Collector(analysis)], whole_stream=True).run()
    features = as_one_stream(compute(samples), student.meta.stream_normalisation)
    pieces = [features[i:i + 100] for i in range(0, len(features), 100)]  # 2 s = 100 frames of 20 ms
    assert len(pieces) >= 3
    direct = [student.predict(piece, None) for piece in pieces]
    want = np.average([p.avd for p in direct], axis=0, weights=[len(p) for p in pieces])
    # the same frames (streamed = offline front end, test_features) and the same float32 model
    np.testing.assert_allclose([analysis.whole[n] for n in DIMENSIONS], np.clip(want, 1, 7), atol=1e-5)
    assert analysis.whole["start"] == 0.0 and analysis.whole["end"] == pytest.approx(len(samples) / 16000, abs=0.025)


def test_a_batch_table_is_exactly_score_s_table_failed_files_included(student, folder, tmp_path):
    """`Analyses.to_dataframe(per)` holds the rows and columns `emolive score --per` writes: a damaged
    file's rows carry its error, an empty file is a row with only its error, a silent file is there."""
    import pandas

    damaged, empty, silent = tmp_path / "truncated.flac", tmp_path / "empty0.wav", tmp_path / "silence.flac"
    damaged.write_bytes((folder / "a.flac").read_bytes()[:20000])  # cut part way: libsndfile loses sync
    empty.write_bytes(b"")
    sf.write(silent, np.zeros(3 * 16000, np.float32), 16000)
    files = [folder / "a.flac", damaged, empty, silent]
    batch = emolive.analyze(files, model=student)
    for per in ("file", "window", "turn"):
        out = tmp_path / f"{per}.csv"
        assert main(["-q", "score", *map(str, files), "--per", per, "--out", str(out)]) == 1  # failed files
        scored = pandas.read_csv(out, keep_default_na=False)
        frame = batch.to_dataframe(per).reset_index()
        assert list(frame.columns) == ["file", *scored.columns[1:]] and len(frame) == len(scored)
        assert frame["file"].tolist() == scored["path"].tolist()
        assert frame["error"].tolist() == scored["error"].tolist()
        assert pandas.to_numeric(scored["activation"], errors="coerce").tolist() == \
            pytest.approx(frame["activation"].tolist(), nan_ok=True)
    rows = batch.to_dataframe("file").reset_index().set_index("file")
    assert "damaged" in rows.loc[str(damaged), "error"] and np.isfinite(rows.loc[str(damaged), "activation"])
    assert "is empty (0 bytes)" in rows.loc[str(empty), "error"] and np.isnan(rows.loc[str(empty), "activation"])
    assert rows.loc[str(silent), "error"] == "" and not rows.loc[str(silent), "speech"]


def test_a_table_of_no_known_kind_is_one_error_naming_the_kinds(student, folder):
    with pytest.raises(emolive.EmoliveError, match="per='bogus': give 'file', 'window' or 'turn'"):
        emolive.analyze(folder / "a.flac", model=student).to_dataframe("bogus")


def test_window_options_that_fit_no_file_raise_instead_of_failing_every_file(student, folder):
    with pytest.raises(emolive.EmoliveError, match=r"hop \(--hop, hop=\) 0.25 s must be a positive multiple"):
        emolive.analyze([folder / "a.flac", folder / "b.flac"], model=student, hop=0.25)
    with pytest.raises(emolive.EmoliveError, match="give 0 <= start < end"):
        emolive.analyze([folder / "a.flac", folder / "b.flac"], model=student, start=1.0, end=0.5)


@pytest.fixture(scope="module")
def calls(tmp_path_factory, folder) -> list[Path]:
    """The three clips as 8 kHz telephone-band files: what a call centre's recorder writes."""
    root = tmp_path_factory.mktemp("calls")
    paths = [root / f"call{i}.wav" for i in range(3)]
    for path, clip in zip(paths, (folder / "a.flac", folder / "b.flac", folder / "sub" / "c.flac")):
        sf.write(path, read_audio(clip)[::2], 8000)  # every other sample: enough for a rate, not a filter test
    return paths


def narrowband_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Hz audio holds nothing above" in r.getMessage()]


def test_one_file_below_16k_is_warned_about_once_naming_the_teacher_to_a_student(student, calls, caplog):
    with caplog.at_level("WARNING"):
        analysis = emolive.analyze(calls[0], model=student)
    [warning] = narrowband_warnings(caplog)
    assert analysis.input_rate == 8000 and str(calls[0]) in warning and "nothing above 4000 Hz" in warning
    assert "--model teacher" in warning


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_of_calls_is_warned_about_once_not_per_file(student, calls, caplog, workers):
    with caplog.at_level("WARNING"):
        analyses = emolive.analyze(calls, model=student if workers == 1 else "student", num_workers=workers)
    [warning] = narrowband_warnings(caplog)
    assert str(calls[0]) in warning and "not named" in warning
    assert [a.input_rate for a in analyses] == [8000] * 3 and all(a.windows for a in analyses)


def test_the_teacher_is_told_its_band_without_being_pointed_at_itself(student):
    """The model's kind, not its name, decides: a pretrained-embedding bundle (the shipped teacher's
    own config) is not sent to --model teacher; 16 kHz and above is no news."""
    from types import SimpleNamespace

    from emolive.engine.bundle import parse_config, read_config
    from emolive.engine.narrowband import narrowband_note
    from emolive.plugins.teacher.summary import DEFAULT_BUNDLE

    teacher = SimpleNamespace(name="teacher", meta=parse_config(read_config(DEFAULT_BUNDLE), DEFAULT_BUNDLE)[0])
    note = narrowband_note("call.wav", 8000.0, teacher)
    assert "nothing above 4000 Hz" in note and "model teacher learnt from 16 kHz" in note and "--model" not in note
    assert "--model teacher" in narrowband_note("call.wav", 11025.0, student)
    assert narrowband_note("call.wav", 16000.0, student) is None and narrowband_note("demo", None, student) is None
