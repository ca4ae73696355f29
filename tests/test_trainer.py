"""The trainer end to end on real corpus clips: train, bundle, evaluate --json, export, default model."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

import emolive
from emolive.engine.features import compute
from emolive.engine.plugin import load_model
from emolive.engine.schema import DIMENSIONS
from emolive.engine.windows import covered_end
from emolive.plugins.student import DEFAULT_BUNDLE, load_bundle
from tests.conftest import CORPORA, OWN_MOUNTS_MISSING, corpus_files, interruptible, read_audio
from emolive.trainer.cli import main as trainer_main
from emolive.trainer.labelled import clip_names, session_features
from emolive.trainer.data import read_manifest, read_splits
from emolive.plugins.student.graph import export_graph


def subset_manifest(tmp_path: Path, corpus: str, every: int) -> Path:
    """A manifest of every `every`-th clip of a shared corpus (absolute paths, same columns)."""
    src = CORPORA / corpus / "manifest.csv"
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))[::every]
    out = tmp_path / corpus / "manifest.csv"
    out.parent.mkdir(parents=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({**r, "path": str(CORPORA / corpus / r["path"])})
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A TCGRU+MTL trained for a few epochs on a third of RAVDESS."""
    tmp = tmp_path_factory.mktemp("train")
    manifest = subset_manifest(tmp, "ravdess", every=3)
    out = tmp / "bundle"
    rc = trainer_main(["train", "--data", str(manifest), "--cache", str(tmp / "cache"), "--epochs", "6",
                       "--patience", "6", "--seed", "1", "--epoch-clips", "0", "--test-frac", "0.2", "--out", str(out)])
    assert rc == 0
    return manifest, out, tmp / "cache"


def test_train_writes_a_loadable_bundle_with_speaker_independent_splits(trained):
    manifest, out, _ = trained
    model, meta = load_bundle(out)
    assert meta.architecture == "tcgru" and len(meta.class_names) == 8
    utts = read_splits(out / "splits.csv", read_manifest(manifest))
    speakers = {s: {u.speaker for u in utts if u.split == s} for s in ("train", "val", "test")}
    assert all(speakers.values())
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"])
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["test"]["n"] == sum(u.split == "test" for u in utts)
    # even a short run learns activation, the easiest dimension, on unseen speakers
    assert results["test"]["test"]["ccc"]["activation"] > 0.3


def test_an_int8_bundle_records_the_scores_trainer_evaluate_gives_it(tmp_path, capsys):
    """The test scores in results.json and config.json were made with the float32 weights before they
    were stored as int8: the shipped student's record said UAR 0.537 where `trainer evaluate` of the
    bundle prints 0.536. They are the stored weights' now, equal to evaluate's up to float32 rounding
    (ONNX against torch: CCCs ~3e-8 apart here; the float32 weights' scores were 3e-4 from the int8 ones'
    on this run, so 1e-5 tells the two apart on any CPU)."""
    manifest, out = subset_manifest(tmp_path, "emodb", every=3), tmp_path / "int8"
    assert trainer_main(["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--epochs", "2",
                         "--epoch-clips", "0", "--test-frac", "0.3", "--int8", "--out", str(out)]) == 0
    recorded = json.loads((out / "results.json").read_text())["test"]["test"]
    capsys.readouterr()
    assert trainer_main(["evaluate", "--model", str(out), "--data", str(manifest), "--cache", str(tmp_path / "cache"),
                         "--split", "test", "--protocol", "mixed", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["n"] == recorded["n"] > 0
    for dimension, value in recorded["ccc"].items():
        assert abs(value - evaluated["ccc"][dimension]) < 1e-5, dimension
    assert abs(recorded["uar"] - evaluated["uar"]) < 1e-5


def test_evaluate_json_matches_the_model_applied_directly(trained, capsys):
    manifest, out, cache = trained
    capsys.readouterr()
    rc = trainer_main(["evaluate", "--model", str(out), "--data", str(manifest), "--cache", str(cache),
                       "--splits", str(out / "splits.csv"), "--split", "test", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"ccc", "uar", "n"} and set(report["ccc"]) == {"activation", "valence", "dominance"}
    utts = [u for u in read_splits(out / "splits.csv", read_manifest(manifest)) if u.split == "test"]
    model, meta = load_bundle(out)
    preds, classes = [], []
    # evaluate hears each speaker as one live session through the bundle's stream normaliser
    inputs = session_features([compute(read_audio(u.path)) for u in utts], [u.speaker for u in utts],
                              meta.stream_normalisation, clip_names(utts))
    with torch.no_grad():
        for x in inputs:
            o = model(torch.from_numpy(x)[None])
            preds.append(o["avd"][0].numpy())
            classes.append(int(o["logits"][0].argmax()))
    preds, truth = np.array(preds), np.array([u.avd for u in utts])
    for k, name in enumerate(("activation", "valence", "dominance")):
        p, t = preds[:, k], truth[:, k]
        expected = 2 * np.cov(p, t, bias=True)[0, 1] / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)
        # the same predictions scored twice (float64 numpy here): only the report's float32 predictions
        # and summation order differ, ~1e-7 relative; a wrong formula or a wrong utterance is off by >> 1e-3
        assert report["ccc"][name] == pytest.approx(expected, abs=1e-4)
    recalls = [np.mean([c == meta.class_names.index(e) for c, u in zip(classes, utts) if u.emotion == e])
               for e in sorted({u.emotion for u in utts})]
    assert report["uar"] == pytest.approx(np.mean(recalls), abs=1e-6)  # counts: exact up to one float division
    assert report["n"] == len(utts)


def test_onnx_export_matches_torch_on_any_length(trained, tmp_path):
    _, out, _ = trained
    model, _ = load_bundle(out)
    path = export_graph(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path))
    for frames in (20, 150, 333):
        x = torch.randn(2, frames, 43) * 3
        lengths = torch.tensor([frames, frames // 2])
        with torch.no_grad():
            ref = model(x, lengths)
        avd, probs, emb = session.run(None, {"features": x.numpy(), "lengths": lengths.numpy()})
        # float32 GRU arithmetic in two runtimes: differences are a few ulp of values of order 1-10. On
        # another CPU each runtime may pick other kernels (onnxruntime's MLAS, torch's oneDNN/OpenBLAS), each
        # float32-accurate per op; the GRU's state is bounded (|h| <= 1, saturating gates), so rounding does
        # not grow over 333 steps
        assert np.abs(avd - ref["avd"].numpy()).max() < 1e-4
        assert np.abs(probs - torch.softmax(ref["logits"], 1).numpy()).max() < 1e-4
        assert np.abs(emb - ref["embedding"].numpy()).max() < 1e-4


def test_default_student_is_small_int8_and_as_good_as_its_float_self(tmp_path):
    """The shipped bundle stores int8 weights; on its held-out speakers it scores within 0.01 CCC
    of the float32 model it was quantised from (whose test CCC the bundle recorded)."""
    config = json.loads((DEFAULT_BUNDLE / "config.json").read_text())
    assert config["weights"] == "int8"
    assert (DEFAULT_BUNDLE / "model.safetensors").stat().st_size <= 0.25e6
    recorded = config["metrics"]["test"]["test"]["ccc"]
    manifests = [str(CORPORA / c / "manifest.csv") for c in ("emodb", "ravdess", "ased", "baved")]  # its training data
    proc = subprocess.run([sys.executable, "-m", "emolive.trainer.cli", "evaluate", "--model", "student",
                           *sum((["--data", m] for m in manifests), []), "--cache", str(tmp_path),
                           "--splits", str(DEFAULT_BUNDLE / "splits.csv"), "--split", "test", "--json"],
                          capture_output=True, text=True, check=True)
    got = json.loads(proc.stdout)["ccc"]
    # recorded on the training machine, rerun here: another CPU's float32 rounding moves features by ~1e-5
    # and a CCC by about as much, three orders below 0.01; what 0.01 bounds is int8 against float32
    for dim in ("activation", "valence", "dominance"):
        assert abs(got[dim] - recorded[dim]) <= 0.01, dim


@pytest.mark.parametrize("command", ["features", "train", "evaluate", "export"])
def test_every_command_has_help(command):
    proc = subprocess.run([sys.executable, "-m", "emolive.trainer.cli", command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--" in proc.stdout and "usage: trainer" in proc.stdout


def test_bad_manifest_is_one_line_error(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("path,speaker\nx.flac,1\n")
    proc = subprocess.run([sys.executable, "-m", "emolive.trainer.cli", "evaluate", "--data", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "emotion" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_clip_too_short_for_one_frame_is_one_line_error_not_a_made_up_estimate(tmp_path):
    """10 ms of audio has no 25 ms frame: the model would answer from nothing, and the answer
    would enter the CCC as if it had heard the clip."""
    manifest = subset_manifest(tmp_path, "emodb", every=100)
    first = next(csv.DictReader(manifest.open()))
    sf.write(tmp_path / "short.wav", read_audio(first["path"])[:160], 16000)
    with manifest.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(first)).writerow({**first, "path": str(tmp_path / "short.wav")})
    proc = subprocess.run([sys.executable, "-m", "emolive.trainer.cli", "evaluate", "--model", "student", "--data",
                           str(manifest), "--cache", str(tmp_path / "cache"), "--json"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    *_, last = proc.stderr.strip().splitlines()  # after the warning that these speakers trained the model
    assert "short.wav" in last and "shorter than one 25 ms frame" in last and "Traceback" not in proc.stderr


class SamplesReadingPlugin:
    """A plugin that says nothing of what it reads (a third party's): it is handed the samples."""

    def __init__(self, inner) -> None:
        self.inner, self.meta, self.name, self.device, self.heard = inner, inner.meta, "wrapped", "cpu", []

    def predict(self, features, samples):
        return self.predict_batch([features], [samples])[0]

    def predict_batch(self, features, samples):
        self.heard += [len(s) for s in samples]
        return self.inner.predict_batch(features, samples)

    def size_bytes(self):
        return self.inner.size_bytes()


def test_evaluate_decodes_audio_only_for_a_model_that_reads_it(trained, monkeypatch):
    from emolive.trainer import evaluate

    manifest, out, cache = trained
    utts = [u for u in read_splits(out / "splits.csv", read_manifest(manifest)) if u.split == "test"]
    student, decoded = load_model(str(out)), []
    monkeypatch.setattr(evaluate, "read_audio", lambda path, rate: decoded.append(path) or read_audio(path))
    alone = evaluate.predict_utterances(student, utts, cache, progress=False)
    assert decoded == []  # the student reads features only
    wrapped = SamplesReadingPlugin(student)
    told = evaluate.predict_utterances(wrapped, utts, cache, progress=False)
    assert decoded == [u.path for u in utts]
    np.testing.assert_array_equal(alone["avd"], told["avd"])  # the same features, the same estimates
    # each clip's samples as the engine's whole-recording pass hands them: those its frames cover (all
    # of them were handed, and a Whisper teacher's clip score then differed from emolive score's by 0.13)
    for u, heard in zip(utts, wrapped.heard):
        engine = SamplesReadingPlugin(student)
        emolive.analyze(u.path, model=engine)
        assert heard == max(engine.heard) == covered_end(len(compute(read_audio(u.path))), student.meta.frontend)


def test_evaluate_warns_about_training_speakers_and_split_test_keeps_the_others(trained, capsys):
    """The bundle's splits.csv says which speakers it learned from; without --splits, evaluate uses it."""
    manifest, out, cache = trained
    base = ["evaluate", "--model", str(out), "--data", str(manifest), "--cache", str(cache), "--json"]
    capsys.readouterr()
    assert trainer_main(base) == 0
    captured = capsys.readouterr()
    assert "training or validation split" in captured.err
    everything = json.loads(captured.out)
    assert trainer_main(base + ["--split", "test"]) == 0
    captured = capsys.readouterr()
    assert "training or validation split" not in captured.err
    held_out = json.loads(captured.out)
    tests = {row["speaker"] for row in csv.DictReader((out / "splits.csv").open()) if row["split"] == "test"}
    assert held_out["n"] == len([u for u in read_manifest(manifest) if u.speaker in tests]) < everything["n"]
    # the same clips copied under another folder name have other speaker ids: their audio still tells
    renamed = manifest.parent.parent / "RAVDESS copy" / "manifest.csv"
    renamed.parent.mkdir()
    shutil.copy(manifest, renamed)
    base[base.index(str(manifest))] = str(renamed)
    assert trainer_main(base) == 0
    assert "training or validation split" in capsys.readouterr().err
    assert trainer_main(base + ["--split", "test"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == held_out["n"]
    # the data's own split column calling every clip "test1" (learned ones too), then with one clip
    # left without a split: the model's learned clips are still not held out (with a split on every
    # clip they passed as held out), and the data's own words stay for the others (one clip without a
    # split made every clip's split "test")
    rows = list(csv.DictReader(manifest.open()))
    first_held_out = read_manifest(manifest)[0].speaker in tests
    for blank, expected in ((False, held_out["n"]), (True, held_out["n"] - first_held_out)):
        own = manifest.parent.parent / f"own splits {blank}" / "manifest.csv"
        own.parent.mkdir()
        with own.open("w", newline="") as f:
            writer = csv.DictWriter(f, [*rows[0], "split"])
            writer.writeheader()
            writer.writerows({**row, "path": str(manifest.parent / row["path"]), "split": "" if blank and not i
                              else "test1"} for i, row in enumerate(rows))
        assert trainer_main([*base[:base.index("--data") + 1], str(own), *base[base.index("--data") + 2:],
                             "--split", "test1"]) == 0
        assert json.loads(capsys.readouterr().out)["n"] == expected
    # a --splits file calling every speaker "test" (one the model trained on too) held out every clip
    # as test; the model's own learned clips stay learned, so the same clips as above are scored
    every_test = out.parent / "every speaker test.csv"
    every_test.write_text("speaker,split\n" + "".join(f"{u.speaker},test\n" for u in read_manifest(renamed)))
    assert trainer_main(base + ["--splits", str(every_test), "--split", "test"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == held_out["n"]
    # a split no clip is in names the splits there are, the model's learned ones among them
    assert trainer_main(base + ["--split", "holdout"]) == 2
    error = capsys.readouterr().err
    assert "no utterances in split 'holdout'; the clips' splits: test (" in error and "train (" in error


def test_training_writes_its_history_and_provenance_into_the_bundle(trained):
    _, out, _ = trained
    rows = list(csv.DictReader((out / "history.csv").open()))
    results = json.loads((out / "results.json").read_text())
    assert [int(r["epoch"]) for r in rows] == list(range(6))
    assert all(np.isfinite(float(r["train_loss"])) and -1 <= float(r["val_mean_ccc"]) <= 1 for r in rows)
    assert float(rows[results["best_epoch"]]["val_mean_ccc"]) == pytest.approx(max(float(r["val_mean_ccc"]) for r in rows),
                                                                               abs=1e-6)
    meta = load_bundle(out)[1]
    assert set(meta.training["versions"]) >= {"emolive_commit", "torch", "numpy"}
    assert meta.stream_normalisation is not None and meta.training["views"] == 0  # the shipped recipe has none


def test_cli_configs_are_built_from_the_arguments():
    """TrainConfig.from_args / DataSpec.from_args take every same-named option, and the negated flags."""
    from emolive.trainer.cli import build_parser
    from emolive.trainer.pipeline import DataSpec
    from emolive.trainer.config import TrainConfig

    args = build_parser().parse_args(["train", "--data", "a.csv", "--data", "b.csv", "--epochs", "7", "--lr", "0.01",
                                      "--no-multitask", "--no-balance", "--views", "2", "--features", "hubert-large",
                                      "--val-frac", "0.3", "--out", "o"])
    cfg = TrainConfig.from_args(args)
    assert (cfg.epochs, cfg.lr, cfg.multitask, cfg.balance_corpora, cfg.use_views, cfg.stream_norm) == \
        (7, 0.01, False, False, True, False)  # stream normalisation is for MFB+F0 students only
    tuned = TrainConfig.from_args(build_parser().parse_args(
        ["train", "--data", "a.csv", "--out", "o", "--ce-weight", "1", "--ccc-alpha", "0.5", "--ccc-beta", "0.25",
         "--ccc-per-corpus", "--balance-quadrants", "--dropout", "0.3"]))
    assert (tuned.ce_weight, tuned.ccc_alpha, tuned.ccc_beta, tuned.ccc_per_corpus, tuned.balance_quadrants,
            tuned.dropout) == (1.0, 0.5, 0.25, True, True, 0.3)
    data = DataSpec.from_args(args)
    assert data.data == ("a.csv", "b.csv") and data.val_frac == 0.3 and data.features == "hubert-large"
    assert data.cache_root("embeddings").name == "embeddings"
    assert DataSpec(cache="/c").cache_root("embeddings") == Path("/c")


def test_user_errors_are_one_line_and_bugs_stay_tracebacks(monkeypatch, tmp_path, capsys):
    from emolive.trainer import commands
    from emolive.trainer.errors import TrainerError

    def user_mistake(args):
        raise TrainerError("no utterances in split 'tset'")

    def bug(args):
        raise ValueError("a bug")

    missing = tmp_path / "none.csv"
    assert trainer_main(["features", "--data", str(missing)]) == 2  # a missing file is the user's
    assert f"{missing}: cannot read the table" in capsys.readouterr().err
    monkeypatch.setattr(commands, "features", user_mistake)
    assert trainer_main(["features", "--data", "m.csv"]) == 2
    assert capsys.readouterr().err.strip() == "trainer features: error: no utterances in split 'tset'"
    monkeypatch.setattr(commands, "features", bug)
    with pytest.raises(ValueError, match="a bug"):
        trainer_main(["features", "--data", "m.csv"])


def _train_args(manifest: Path, tmp: Path, out: str, *extra: str, epochs: int = 4) -> list[str]:
    return ["train", "--data", str(manifest), "--cache", str(tmp / "cache"), "--epochs", str(epochs), "--patience", "1000",
            "--hidden", "16", "--embedding-dim", "16", "--views", "1", "--batch-size", "16", "--epoch-clips", "0", "--out", str(tmp / out),
            *extra]


def _signalled_after_an_epoch(manifest: Path, tmp_path: Path, out: str, signum: int) -> tuple[int, list[str]]:
    """A run set to 1000 epochs (it cannot finish before the signal lands however loaded the machine
    is) sent `signum` once epoch 1 is logged: its exit status and stderr lines."""
    cmd = [sys.executable, "-m", "emolive.trainer.cli", *_train_args(manifest, tmp_path, out, epochs=1000)]
    proc = interruptible(cmd, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("epoch   1"):
            proc.send_signal(signum)
            break
    lines += proc.stderr.readlines()
    assert "Traceback" not in "".join(lines)
    return proc.wait(), lines


def test_a_second_run_into_the_same_bundle_is_refused_and_a_finished_run_leaves_no_checkpoint(tmp_path, capsys):
    """Two runs into one --out shared its checkpoint folder: one removed it under the other, which then
    could not write its bundle and advised resuming from a checkpoint that no longer existed. A killed
    run's half-written checkpoint file stayed in the folder for good."""
    import fcntl

    manifest, out = subset_manifest(tmp_path, "emodb", every=8), tmp_path / "bundle"
    command = ["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--epochs", "1",
               "--epoch-clips", "0", "--out", str(out)]
    folder = tmp_path / "bundle.checkpoint"
    folder.mkdir()
    (folder / ".checkpoint.safetensors.partial-4242abcd").write_bytes(b"half")  # what a kill -9 mid-write leaves
    with open(folder / ".lock", "w") as other:  # another trainer's run into the same --out holds it
        fcntl.flock(other, fcntl.LOCK_EX)
        assert trainer_main(command) == 2
        assert (f"another trainer is training into {out} (its checkpoint folder {folder} is in use)"
                in capsys.readouterr().err)
        assert not out.exists()
    assert trainer_main(command) == 0 and (out / "config.json").is_file()
    assert not folder.exists()  # the stale file swept, the folder removed with the lock


def test_ctrl_c_after_the_last_epoch_says_resume_writes_the_bundle(tmp_path, capsys, monkeypatch):
    """Ctrl-C while the held-out splits were scored or the bundle written said only "interrupted", as if
    the run were lost; its last epoch's checkpoint holds it, and --resume writes the bundle. (The Ctrl-C
    is raised where the scoring starts: a signal's timing is not the test's.)"""
    from emolive.trainer import pipeline

    manifest, out = subset_manifest(tmp_path, "emodb", every=8), tmp_path / "bundle"
    command = ["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--epochs", "1",
               "--epoch-clips", "0", "--out", str(out)]

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "score", ctrl_c)
        assert trainer_main(command) == 130
    checkpoint = tmp_path / "bundle.checkpoint" / "checkpoint.safetensors"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"trainer train: interrupted: after the last epoch, before the bundle was written; the checkpoint "
        f"{checkpoint} holds the run: add --resume to write it")
    assert trainer_main(command + ["--resume"]) == 0 and (out / "config.json").is_file() and not checkpoint.exists()


def test_ctrl_c_while_trainer_starts_is_one_line_not_a_traceback(tmp_path):
    """Its parser's options and torch load for a second or two outside the command's error handling:
    Ctrl-C then printed a KeyboardInterrupt traceback (emolive's own commands say one line)."""
    import signal

    manifest = subset_manifest(tmp_path, "emodb", every=50)
    for delay in (0.7, 1.4):
        proc = interruptible([str(Path(sys.executable).parent / "trainer"), "features", "--data", str(manifest),
                              "--cache", str(tmp_path / "cache")], stderr=subprocess.PIPE, text=True)
        time.sleep(delay)  # past the interpreter's start, within the options' and torch's load on any machine here
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert proc.returncode in (0, 130) and (proc.returncode == 0 or err.strip().splitlines()[-1].startswith(
            "trainer")), err


def test_sigterm_ends_training_as_ctrl_c_does_naming_the_checkpoint(tmp_path):
    """A scheduler's SIGTERM stopped a run without a word (exit 143, the last line an epoch's)."""
    import signal

    code, lines = _signalled_after_an_epoch(subset_manifest(tmp_path, "emodb", every=8), tmp_path, "run",
                                            signal.SIGTERM)
    assert code == 143
    assert re.match(r"trainer train: terminated: the checkpoint after epoch \d+ is .*; add --resume", lines[-1])


def test_ctrl_c_names_the_checkpoint_and_resume_gives_the_uninterrupted_result(tmp_path):
    """A run stopped by SIGINT after an epoch, then resumed, writes the same weights as one that ran through.

    Bitwise equal, not close: the resumed process restores every generator and Adam's state, so it
    runs the same float operations in the same order on the same machine and thread count."""
    import signal

    manifest = subset_manifest(tmp_path, "emodb", every=8)
    # the epoch count is not part of a checkpoint's identity, so the run stopped in its 1000 epochs
    # resumes to two epochs past its checkpoint, and the uninterrupted run is given the same count
    code, lines = _signalled_after_an_epoch(manifest, tmp_path, "parts", signal.SIGINT)
    assert code == 130
    checkpoint = tmp_path / "parts.checkpoint" / "checkpoint.safetensors"
    found = re.match(r"trainer train: interrupted: the checkpoint after epoch (\d+) is (.*); add --resume", lines[-1])
    assert found and found.group(2) == str(checkpoint), lines[-1]
    assert not (tmp_path / "parts").exists()
    epochs = int(found.group(1)) + 3  # epochs 0..N are saved: two more to run after resuming
    assert trainer_main(_train_args(manifest, tmp_path, "parts", "--resume", epochs=epochs)) == 0
    assert trainer_main(_train_args(manifest, tmp_path, "whole", epochs=epochs)) == 0
    assert not (tmp_path / "whole.checkpoint").exists()  # removed once the bundle is written
    whole, parts = (load_bundle(tmp_path / name)[0].state_dict() for name in ("whole", "parts"))
    assert all(torch.equal(whole[k], parts[k]) for k in whole)
    history = [(tmp_path / name / "history.csv").read_text().splitlines() for name in ("whole", "parts")]
    assert [r.split(",")[2:] for r in history[0]] == [r.split(",")[2:] for r in history[1]]  # val CCC per epoch


def tiny_set_and_config(tmp_path: Path):
    """24 random utterances of 4 speakers and a one-epoch config of 8 units: a checkpoint in a second."""
    from emolive.trainer.config import TrainConfig
    from emolive.trainer.data import Utterance
    from emolive.trainer.labelled import labelled_set

    rng = np.random.default_rng(0)
    utts = [Utterance(tmp_path / f"{i}.wav", f"c/{i % 4}", "sad", "", *rng.uniform(1, 7, 3)) for i in range(24)]
    data = labelled_set(utts, [rng.normal(size=(60, 43)).astype(np.float32) for _ in utts], ["sad"])
    return data, TrainConfig(epochs=1, batch_size=8, hidden=8, embedding_dim=8, stream_norm=False, epoch_clips=0)


def test_resume_refuses_a_checkpoint_of_other_settings_and_a_missing_one(tmp_path):
    from emolive.trainer.errors import TrainerError
    from emolive.trainer.config import TrainConfig
    from emolive.trainer.train import Checkpointing, train

    data, cfg = tiny_set_and_config(tmp_path)
    at = Checkpointing(tmp_path / "ckpt")
    with pytest.raises(TrainerError, match="no checkpoint to resume"):
        train(data, data, ["sad"], cfg, log=lambda _: None, checkpoint=Checkpointing(at.directory, resume=True))
    train(data, data, ["sad"], cfg, log=lambda _: None, checkpoint=at)
    longer = TrainConfig(**{**vars(cfg), "epochs": 2})  # more epochs: allowed
    assert len(train(data, data, ["sad"], longer, log=lambda _: None,
                     checkpoint=Checkpointing(at.directory, resume=True)).history) == 2
    other = TrainConfig(**{**vars(cfg), "lr": 0.1})
    with pytest.raises(TrainerError, match="other data or settings"):
        train(data, data, ["sad"], other, log=lambda _: None, checkpoint=Checkpointing(at.directory, resume=True))
    # the same clips, labels and lengths, other audio (two clips of one length swapped under their names)
    changed = dataclasses.replace(data, features=[f + 1.0 for f in data.features])
    with pytest.raises(TrainerError, match="other data or settings"):
        train(changed, changed, ["sad"], longer, log=lambda _: None,
              checkpoint=Checkpointing(at.directory, resume=True))
    # fewer epochs than the checkpoint holds: its history and best epoch lay beyond --epochs
    with pytest.raises(TrainerError, match="holds 2 epochs, more than --epochs 1: resume with --epochs 2"):
        train(data, data, ["sad"], cfg, log=lambda _: None, checkpoint=Checkpointing(at.directory, resume=True))


def test_a_checkpoint_inside_the_bundle_folder_is_refused_before_the_data_is_read(tmp_path, capsys):
    """The bundle replaces --out whole, so a run checkpointing inside it trained every epoch and then
    could not be written, nor resumed."""
    for out, inside in ((tmp_path / "b", tmp_path / "b" / "ck"), (tmp_path / "same", tmp_path / "same")):
        assert trainer_main(["train", "--data", str(tmp_path / "not-read.csv"), "--out", str(out),
                             "--checkpoint-dir", str(inside)]) == 2
        assert "is inside --out" in capsys.readouterr().err
    # a cache there was found once its features were made and the run had trained
    assert trainer_main(["train", "--data", str(tmp_path / "not-read.csv"), "--out", str(tmp_path / "c"),
                         "--cache", str(tmp_path / "c" / "cache")]) == 2
    assert "(--cache) is inside --out" in capsys.readouterr().err
    run = subprocess.run([str(Path(sys.executable).parent / "trainer"), "train", "--data",
                          str(tmp_path / "not-read.csv"), "--out", str(tmp_path / "e")],
                         env={**os.environ, "EMOLIVE_CACHE": str(tmp_path / "e" / "c")},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "($EMOLIVE_CACHE) is inside --out" in run.stderr, run.stderr
    # a run without --resume wrote over an interrupted run's checkpoint, which the interruption had named
    kept = tmp_path / "k.checkpoint" / "checkpoint.safetensors"
    kept.parent.mkdir()
    kept.write_bytes(b"epochs of work")
    assert trainer_main(["train", "--data", str(tmp_path / "not-read.csv"), "--out", str(tmp_path / "k")]) == 2
    assert "holds an interrupted run: add --resume to continue it, or remove it" in capsys.readouterr().err
    assert kept.read_bytes() == b"epochs of work"


def checkpoint_of_a_tiny_run(tmp_path: Path):
    """A tiny run's data, config, Checkpointing, checkpoint file, its metadata and its tensors."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from emolive.trainer.train import Checkpointing, train

    data, cfg = tiny_set_and_config(tmp_path)
    at = Checkpointing(tmp_path / "ckpt")
    train(data, data, ["sad"], cfg, log=lambda _: None, checkpoint=at)
    entry = at.directory / "checkpoint.safetensors"
    with safe_open(str(entry), "pt") as f:
        metadata = f.metadata()
    return data, cfg, at, entry, metadata, load_file(str(entry))


def test_resume_refuses_a_checkpoint_with_nan_weights_at_once(tmp_path):
    from safetensors.torch import save_file

    from emolive.trainer.errors import TrainerError
    from emolive.trainer.config import TrainConfig
    from emolive.trainer.train import Checkpointing, train

    data, cfg, at, entry, metadata, tensors = checkpoint_of_a_tiny_run(tmp_path)
    best = next(k for k in tensors if k.startswith("best.") and tensors[k].is_floating_point())
    tensors[best] = torch.full_like(tensors[best], float("nan"))
    save_file(tensors, str(entry), metadata=metadata)
    longer = TrainConfig(**{**vars(cfg), "epochs": 2})
    with pytest.raises(TrainerError, match="NaN or infinite weights"):
        train(data, data, ["sad"], longer, log=lambda _: None, checkpoint=Checkpointing(at.directory, resume=True))


def test_resume_refuses_an_edited_or_damaged_state_in_one_line(tmp_path):
    """The weights were checked, the state's fields not: a negative epoch, a best epoch beyond the history,
    a string for a count, a removed optimiser, an impossible random state or learning rate each gave a
    traceback from numpy, torch or the loop (ValueError, IndexError, TypeError, KeyError, OverflowError,
    RuntimeError), and some (NaN best, negative counts) were taken silently."""
    import json

    from safetensors.torch import save_file

    from emolive.trainer.checkpoint import _STATE_KEY
    from emolive.trainer.errors import TrainerError
    from emolive.trainer.config import TrainConfig
    from emolive.trainer.train import Checkpointing, train

    data, cfg, at, entry, metadata, tensors = checkpoint_of_a_tiny_run(tmp_path)
    state = json.loads(metadata[_STATE_KEY])
    edits = {"next_epoch": -5, "seen": -1, "best_epoch": 99, "stale": "1", "best": "x", "history": None,
             "stopped": 1, "has_best": "yes"}
    longer = TrainConfig(**{**vars(cfg), "epochs": 3})
    cases = [{**state, field: value} for field, value in edits.items()]
    cases.append({k: v for k, v in state.items() if k != "optimizer"})
    cases.append({**state, "numpy_rng": {**state["numpy_rng"], "state": -1}})
    groups = [{**group, "lr": 1e308} for group in state["optimizer"]["param_groups"]]
    cases.append({**state, "optimizer": {**state["optimizer"], "param_groups": groups}})
    for edited in cases:
        save_file(tensors, str(entry), metadata={**metadata, _STATE_KEY: json.dumps(edited)})
        with pytest.raises(TrainerError, match="is not a complete training checkpoint .*start again without --resume"):
            train(data, data, ["sad"], longer, log=lambda _: None, checkpoint=Checkpointing(at.directory, resume=True))
    save_file(tensors, str(entry), metadata=metadata)  # the state as written resumes
    assert len(train(data, data, ["sad"], longer, log=lambda _: None,
                     checkpoint=Checkpointing(at.directory, resume=True)).history) == 3


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "folder", "sparse"])
def test_a_manifest_row_naming_a_device_fifo_folder_or_huge_file_is_one_line_not_a_hang(tmp_path, target, capsys):
    import os

    if target == "fifo":
        os.mkfifo(tmp_path / "pipe.wav")
        target = str(tmp_path / "pipe.wav")
    elif target == "folder":
        (tmp_path / "folder.wav").mkdir()
        target = str(tmp_path / "folder.wav")
    elif target == "sparse":
        with open(tmp_path / "huge.wav", "wb") as f:
            f.truncate(20 << 30)  # 20 GB that take no disk
        target = str(tmp_path / "huge.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker,emotion\n{target},s1,sad\n")
    assert trainer_main(["features", "--data", str(manifest), "--cache", str(tmp_path / "c")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].endswith(("not a regular file", "more than the 4294967296 it may have"))


def test_an_audio_file_is_read_with_the_memory_it_needs_not_the_4_gib_bound():
    """CPython allocates what a read asks for before reading: asking for the 4 GiB bound made every
    37 kB clip peak at 4 GiB (a MemoryError under a 3 GB address-space limit)."""
    import tracemalloc

    from emolive.trainer.data.cache import read_audio_bytes

    clip = corpus_files("emodb")[0]
    tracemalloc.start()
    try:
        data = read_audio_bytes(clip)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data == Path(clip).read_bytes()
    assert peak < len(data) + (1 << 20)  # the bytes and a few objects (measured: the size + 6 kB)


@pytest.mark.parametrize("argv", [
    ["--lr", "-1"], ["--lr", "nan"], ["--lr", "inf"], ["--batch-size", "0"], ["--batch-size", "-5"], ["--hidden", "0"],
    ["--hidden", "-5"], ["--hidden", "1000000"], ["--embedding-dim", "0"], ["--embedding-dim", "5000"],
    ["--dropout", "1.5"], ["--ccc-alpha", "2"], ["--epoch-clips", "-5"], ["--norm-prior-s", "-1"],
    ["--norm-time-constant-s", "0"], ["--seed", "-1"], ["--split-seed", "-1"], ["--crop-s", "0"], ["--crop-s", "-1"],
    ["--crop-s", "1e308"], ["--views", "-1"], ["--epochs", "0"], ["--val-frac", "1"], ["--ce-weight", "-0.1"], ["--seed", "1.5"],
])
def test_a_numeric_option_out_of_range_is_refused_as_it_is_parsed(argv, capsys):
    """Each was a traceback, a 12 TB allocation, an untrained bundle with exit 0, or a bundle refused
    after the whole training; now argparse refuses it before anything runs, saying what to give."""
    from emolive.trainer.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "--data", "m.csv", "--out", "o", *argv])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"trainer train: error: argument {argv[0]}: {argv[1]!r}: give a "), last


@pytest.mark.parametrize("command", ["train", "distill", "embed"])
def test_every_numeric_option_says_its_range_in_help(command, capsys):
    """docs/training.md sends users to `--help` for the ranges, which only --crop-s's text gave."""
    from emolive.trainer.cli import Bounded, build_parser

    parser = build_parser(only=command)
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    command_parser = parser._subparsers._group_actions[0].choices[command]
    ranged = [a for a in command_parser._actions if isinstance(a.type, Bounded)]
    assert ranged and all(f"({a.type})" in text for a in ranged), [a.dest for a in ranged if f"({a.type})" not in text]


@pytest.mark.parametrize(("command", "argv"), [
    ("distill", ["--kappa", "-1"]), ("distill", ["--switch-epoch", "-1"]), ("distill", ["--avd-weight", "nan"]),
    ("embed", ["--batch-seconds", "0"]), ("features", ["--threads", "0"]),
])
def test_other_commands_numeric_options_are_bounded_too(command, argv, capsys):
    from emolive.trainer.cli import build_parser

    required = {"distill": ["--data", "m.csv", "--teacher", "t", "--out", "o"], "embed": ["--bundle", "hubert-large"]}
    before = argv if argv[0] == "--threads" else []  # a top-level option
    with pytest.raises(SystemExit):
        build_parser().parse_args([*before, command, *required.get(command, []), *([] if before else argv)])
    assert f"argument {argv[0]}: {argv[1]!r}: give a " in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    # within --hidden's own bound, but a bundle's parameter budget would refuse it after the training
    (["--hidden", "4096"], "--arch tcgru --hidden 4096 --embedding-dim 128: these hyperparameters make"),
    (["--ccc-alpha", "0.8", "--ccc-beta", "0.5"], "--ccc-alpha 0.8 --ccc-beta 0.5: need alpha, beta >= 0"),
    # no batch of one has a CCC: every epoch took no step and the untrained model was written
    (["--epoch-clips", "1"], "--epoch-clips 1 makes no training step"),
    (["--features", ","], "',' names no stream"),  # a network of no input failed inside torch
])
def test_options_that_together_cannot_train_or_be_saved_are_refused_before_the_data_is_read(tmp_path, argv, message,
                                                                                             capsys):
    missing = tmp_path / "not-read.csv"  # the check comes first: the manifest is never opened
    assert trainer_main(["train", "--data", str(missing), "--out", str(tmp_path / "b"), *argv]) == 2
    assert capsys.readouterr().err.startswith(f"trainer train: error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_a_distillation_schedule_with_no_epoch_to_select_is_refused_before_the_data_is_read(tmp_path, capsys):
    missing = tmp_path / "not-read.csv"
    assert trainer_main(["distill", "--data", str(missing), "--teacher", "student", "--epochs", "5",
                         "--switch-epoch", "5", "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.startswith("trainer distill: error: --epochs 5 leaves no epoch after --switch-epoch 5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("command", "argv", "option"), [
    ("train", ["--out", "{file}/bundle"], "--out"),
    ("train", ["--out", "{tmp}/b", "--checkpoint-dir", "{file}"], "--checkpoint-dir"),
    ("train", ["--out", "{tmp}/b", "--checkpoint-dir", "{file}/deeper/ck"], "--checkpoint-dir"),
    ("train", ["--out", "{tmp}/b", "--cache", "{file}/cache"], "--cache"),
    ("features", ["--cache", "{file}"], "--cache"),
    ("evaluate", ["--cache", "{file}/c"], "--cache"),
])
def test_a_place_the_run_cannot_write_is_one_line_before_any_work(tmp_path, command, argv, option, capsys):
    """A bundle, checkpoint or cache folder under a file, or a file where it must be, was a traceback
    after the first epoch (or at the first feature); now one line names the option, and nothing is made."""
    afile = tmp_path / "afile"
    afile.write_text("mine")
    argv = [a.format(file=afile, tmp=tmp_path) for a in argv]
    assert trainer_main([command, "--data", str(tmp_path / "not-read.csv"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {option} " in err and f"{afile} is not a folder" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] and afile.read_text() == "mine"


def test_the_writable_folder_check_leaves_nothing_behind(tmp_path):
    from emolive.trainer.commands import writable_folder

    writable_folder(tmp_path / "new" / "deeper", "--out x")  # can be made: fine, and not made
    writable_folder(tmp_path, "--out x")
    assert list(tmp_path.iterdir()) == []


def test_a_dimension_that_cannot_be_measured_is_null_in_the_bundles_json(tmp_path):
    """BAVED labels valence on its neutral clips only, so every valence label is equal: no CCC. The
    bundle's config.json and results.json said NaN (not JSON: JavaScript's JSON.parse refuses it)."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    manifest = subset_manifest(tmp_path, "baved", every=25)
    out = tmp_path / "bundle"
    assert trainer_main(["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--epochs", "1",
                         "--epoch-clips", "0", "--hidden", "8", "--embedding-dim", "8", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text(), parse_constant=refuse)
    metrics = json.loads((out / "config.json").read_text(), parse_constant=refuse)["metrics"]
    assert results["val_ccc"]["valence"] is None and isinstance(results["val_ccc"]["activation"], float)
    assert metrics["test"]["test"]["ccc"]["valence"] is None
    assert metrics == {"val_ccc": results["val_ccc"], "test": results["test"]}


def test_the_default_cache_folder_is_checked_and_read_as_shells_mean_it(tmp_path, monkeypatch):
    """Only --cache was checked: $EMOLIVE_CACHE naming a file (or a home that cannot be written) was a
    NotADirectoryError traceback at the first file. An empty $EMOLIVE_CACHE put the caches in the
    current folder, and a quoted '~/x' made a folder named '~'."""
    from emolive.trainer.pipeline import default_cache_root

    afile = tmp_path / "afile"
    afile.write_text("")
    manifest = subset_manifest(tmp_path, "emodb", every=200)
    run = subprocess.run([str(Path(sys.executable).parent / "trainer"), "features", "--data", str(manifest)],
                         env={**os.environ, "EMOLIVE_CACHE": str(afile)}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        f"trainer features: error: the cache folder {afile} ($EMOLIVE_CACHE, else ~/.cache/emolive; or give "
        f"--cache): {afile} is not a folder"]
    monkeypatch.setenv("HOME", str(tmp_path))
    for value, root in [("", tmp_path / ".cache" / "emolive"), ("~/emc", tmp_path / "emc"), ("/x/y", Path("/x/y"))]:
        monkeypatch.setenv("EMOLIVE_CACHE", value)
        assert default_cache_root() == root
    # an empty HOME is an unset one (the caches went to /.cache), and `--cache=~/c`, which a shell leaves as it
    # is, names the home's folder, as the variable does (a folder named ~ was made in the current one)
    import pwd

    monkeypatch.setenv("HOME", "")
    monkeypatch.setenv("EMOLIVE_CACHE", "")
    assert default_cache_root() == Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "emolive"
    from emolive.trainer.cli import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    args = build_parser().parse_args(["train", "--data=~/d.csv", "--cache=~/c", "--out=~/m", "--checkpoint-dir=~/k"])
    assert (args.data[0], args.cache, args.out, args.checkpoint_dir) == tuple(str(tmp_path / name) for name in
                                                                              ("d.csv", "c", "m", "k"))


@pytest.mark.skipif(OWN_MOUNTS_MISSING is not None, reason=OWN_MOUNTS_MISSING or "")
def test_a_full_disk_under_the_feature_cache_is_one_line_and_leaves_no_temporary_file(tmp_path):
    """np.save's OSError was a traceback, and each run left one more `<key>.<pid>.tmp.npy` (a 64 kB
    tmpfs, filled, in this test's own mount namespace)."""
    disk = tmp_path / "full"
    disk.mkdir()
    manifest = subset_manifest(tmp_path, "emodb", every=100)
    mount = f"mount -t tmpfs -o size=64k tmpfs {disk} && head -c 61440 /dev/zero > {disk}/fill && " \
            f'"$@"; code=$?; find {disk} -type f; exit $code'
    run = subprocess.run(["unshare", "-Urm", "sh", "-c", mount, "sh", str(Path(sys.executable).parent / "trainer"),
                          "features", "--data", str(manifest), "--cache", str(disk / "fc")],
                         capture_output=True, text=True, timeout=300)
    left = sorted(Path(name).name for name in run.stdout.split())
    assert run.returncode == 2 and left == ["about.json", "fill"], run.stdout + run.stderr  # no .tmp
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"trainer features: error: cannot write the cache entry {disk / 'fc'}/") and \
        line.endswith(".npy: No space left on device")


def test_training_on_all_splits_records_the_test_clips_as_learned_and_scores_no_held_out_split(tmp_path, capsys):
    """--train-on all fitted the test speakers, yet results.json scored them as held out, splits.csv
    still said test and the learned clips left them out, so evaluate --split test passed them as unseen."""
    manifest, out = subset_manifest(tmp_path, "emodb", every=8), tmp_path / "all"
    assert trainer_main(["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--epochs", "1",
                         "--epoch-clips", "40", "--train-on", "all", "--out", str(out)]) == 0
    assert "test" not in json.loads((out / "results.json").read_text())["test"]
    utts = read_splits(out / "splits.csv", read_manifest(manifest))
    assert {u.split for u in utts} == {"train", "val"}
    with open(out / "learned_clips.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(utts)
    capsys.readouterr()
    assert trainer_main(["evaluate", "--model", str(out), "--data", str(manifest), "--cache", str(tmp_path / "cache"),
                         "--split", "test"]) == 2
    assert "test" in capsys.readouterr().err
    # every split the data names, not the word "test" alone: MSP-Podcast's test1 and test2 stayed held out
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    speakers = sorted({r["speaker"] for r in rows})
    named = {s: ("train", "val", "test1", "holdout")[i % 4] for i, s in enumerate(speakers)}
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], "split"])
        writer.writeheader()
        writer.writerows({**r, "split": named[r["speaker"]]} for r in rows)
    assert trainer_main(["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--epochs", "1",
                         "--epoch-clips", "40", "--train-on", "all", "--out", str(tmp_path / "named")]) == 0
    assert json.loads((tmp_path / "named" / "results.json").read_text())["test"] == {}
    assert {u.split for u in read_splits(tmp_path / "named" / "splits.csv", read_manifest(manifest))} == {"train", "val"}


def test_the_class_head_is_chosen_from_the_clips_trained_and_validated_on(tmp_path):
    """A category found in a second corpus only in its test split made a class: the held-out labels
    shaped the head (EmoDB's one disgust clip was a test clip)."""
    manifests = []
    for corpus, every in (("emodb", 6), ("ravdess", 12)):
        manifest = subset_manifest(tmp_path, corpus, every=every)
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        disgusted = sorted({r["speaker"] for r in rows if r["emotion"] == "disgust"})
        speakers = disgusted[:1] + sorted({r["speaker"] for r in rows} - set(disgusted[:1]))  # the first: test
        split = {s: ("test" if i == 0 else "val" if i == 1 else "train") for i, s in enumerate(speakers)}
        if corpus == "emodb":  # its disgust only in the test split
            rows = [r for r in rows if r["emotion"] != "disgust" or split[r["speaker"]] == "test"]
            assert any(r["emotion"] == "disgust" for r in rows)
        with open(manifest, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*rows[0], "split"])
            writer.writeheader()
            writer.writerows({**r, "split": split[r["speaker"]]} for r in rows)
        manifests += ["--data", str(manifest)]
    out = tmp_path / "m"
    assert trainer_main(["train", *manifests, "--cache", str(tmp_path / "cache"), "--epochs", "1",
                         "--epoch-clips", "40", "--out", str(out)]) == 0
    classes = json.loads((out / "config.json").read_text())["class_names"]
    assert "disgust" not in classes and {"angry", "happy", "sad"} <= set(classes)


def test_options_that_would_do_nothing_or_merge_corpora_are_refused(tmp_path, capsys):
    """--balance-quadrants beside --no-balance changed no weight and was recorded as on; manifests in
    data/emodb/v1 and data/ravdess/v1 were both corpus 'v1', their speakers 03 one speaker."""
    manifest = subset_manifest(tmp_path, "emodb", every=50)
    common = ["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "m")]
    assert trainer_main([*common, "--no-balance", "--balance-quadrants"]) == 2
    assert "--balance-quadrants shares out each corpus's part of an epoch" in capsys.readouterr().err
    assert trainer_main([*common, "--no-stream-norm", "--norm-stream-level"]) == 2
    assert "--norm-stream-level moves the running normaliser's prior, which --no-stream-norm" in capsys.readouterr().err
    twins = []
    for corpus in ("emodb", "ravdess"):
        twin = tmp_path / corpus / "v1" / "manifest.csv"
        twin.parent.mkdir(parents=True)
        shutil.copy(subset_manifest(tmp_path / f"{corpus}-src", corpus, every=200), twin)
        twins.append(str(twin))
    assert trainer_main(["features", "--data", twins[0], "--data", twins[1], "--cache", str(tmp_path / "cache")]) == 2
    assert "would both be corpus 'v1'" in capsys.readouterr().err


def test_a_held_out_corpus_and_a_prior_at_the_stream_level_are_trained_recorded_and_run(tmp_path):
    """--test-data (named by --train-on's help, absent from the parser): a corpus never trained on,
    scored as test and recorded. --norm-stream-level: the bundle's normaliser moves its 40 log mel
    energies' prior to the stream's level, and the engine's windows are the model on the same
    normaliser's frames."""
    manifest, held_out = subset_manifest(tmp_path, "emodb", every=10), subset_manifest(tmp_path, "ravdess", every=40)
    out = tmp_path / "m"
    assert trainer_main(["train", "--data", str(manifest), "--test-data", str(held_out), "--cache",
                         str(tmp_path / "cache"), "--epochs", "1", "--epoch-clips", "0", "--norm-stream-level",
                         "--out", str(out)]) == 0
    model, meta = load_bundle(out)
    assert meta.training["test_data"] == [str(held_out)] and meta.training["data"] == [str(manifest)]
    with open(out / "splits.csv", newline="") as f:
        splits = {row["speaker"]: row["split"] for row in csv.DictReader(f)}
    assert all(splits[u.speaker] == "test" for u in read_manifest(held_out))
    own_test = sum(splits[u.speaker] == "test" for u in read_manifest(manifest))
    assert json.loads((out / "results.json").read_text())["test"]["test"]["n"] == len(read_manifest(held_out)) + own_test
    assert meta.stream_normalisation.level_columns == 40
    audio = np.concatenate([read_audio(p) for p in corpus_files("emodb", every=200)[:2]])
    result = emolive.analyze(audio, sample_rate=16000, model=str(out))
    frames = session_features([compute(audio)], ["one"], meta.stream_normalisation, ["clip"])[0]
    with torch.no_grad():
        want = model(torch.from_numpy(frames[:150])[None])["avd"][0].numpy()
    # the same float32 frames and weights; 1e-4 covers onnxruntime's and torch's GRU summation orders
    np.testing.assert_allclose([result.windows[0][k] for k in DIMENSIONS], want, atol=1e-4)


def test_a_held_out_corpus_is_no_copy_of_the_training_audio_nor_named_as_its_corpus(tmp_path, caplog):
    """--test-data's clips were loaded apart from --data's: 40 copies of the training corpus in another
    folder were scored as held out, next to the test clips they copied, without a word; another corpus in
    a folder of the data's name merged its speakers with the data's, and the error blamed a speaker in
    two splits. Other speakers of the data's corpus are a held-out subset of it, as before."""
    from emolive.trainer.errors import TrainerError
    from emolive.trainer.pipeline import DataSpec

    manifest = subset_manifest(tmp_path, "emodb", every=50)
    copies = tmp_path / "copies" / "manifest.csv"
    copies.parent.mkdir()
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        shutil.copy(row["path"], copies.parent / Path(row["path"]).name)
    with open(copies, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "path": Path(row["path"]).name} for row in rows)
    data = DataSpec(data=(str(manifest),), test_data=(str(copies),))
    own = data.split_utterances()
    with caplog.at_level("WARNING"):
        assert data.with_held_out(own) == own
    assert f"dropped {len(rows)} clip(s) whose audio is a copy of another clip's" in caplog.text
    twin = tmp_path / "elsewhere" / "emodb" / "manifest.csv"
    twin.parent.mkdir(parents=True)
    with open(subset_manifest(tmp_path / "src", "ravdess", every=200), newline="") as f:
        others = list(csv.DictReader(f))
    speakers = sorted({row["speaker"] for row in rows})
    with open(twin, "w", newline="") as f:  # RAVDESS clips under EmoDB's speaker ids
        writer = csv.DictWriter(f, fieldnames=list(others[0]))
        writer.writeheader()
        writer.writerows({**row, "speaker": speakers[i % len(speakers)]} for i, row in enumerate(others))
    with pytest.raises(TrainerError, match="--test-data holds speaker.* of --data too"):
        DataSpec(data=(str(manifest),), test_data=(str(twin),)).with_held_out(own)
    with open(twin, "w", newline="") as f:  # other speakers of the corpus: a held-out subset of it
        writer = csv.DictWriter(f, fieldnames=list(others[0]))
        writer.writeheader()
        writer.writerows({**row, "speaker": f"held-{row['speaker']}"} for row in others)
    assert len(DataSpec(data=(str(manifest),), test_data=(str(twin),)).with_held_out(own)) == len(own) + len(others)


def test_outputs_that_would_destroy_the_users_files_are_refused(tmp_path, capsys):
    """A folder holding a project's own config.json (and the run's manifest) was taken for a bundle and
    replaced whole after training; `export --out BUNDLE/model.safetensors` wrote over the weights it read."""
    project = tmp_path / "project"
    project.mkdir()
    manifest = shutil.copy(subset_manifest(tmp_path, "emodb", every=50), project / "manifest.csv")
    (project / "config.json").write_text('{"my": "settings"}')
    assert trainer_main(["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--out", str(project),
                         "--epochs", "1"]) == 2
    assert "its config.json is not a bundle's" in capsys.readouterr().err and manifest.is_file()
    bundle = shutil.copytree(DEFAULT_BUNDLE, tmp_path / "copy")
    weights = (bundle / "model.safetensors").read_bytes()
    assert trainer_main(["export", "--model", str(bundle), "--out", str(bundle / "model.safetensors")]) == 2
    assert "is inside the bundle it exports" in capsys.readouterr().err
    assert (bundle / "model.safetensors").read_bytes() == weights
    # retraining into a bundle folder deleted whatever else was kept there (notes, a folder of results)
    (bundle / "NOTES.txt").write_text("how this model was made")
    (bundle / "runs").mkdir()
    assert trainer_main(["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--out", str(bundle),
                         "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds 2 file(s) a bundle does not (NOTES.txt, runs)" in err and "move them out" in err, err
    assert (bundle / "NOTES.txt").is_file() and (bundle / "model.safetensors").read_bytes() == weights


def test_the_shipped_models_are_not_replaced_by_a_training_run_unless_asked(tmp_path, capsys):
    """`trainer train --out` the package's own student bundle replaced the installed default model with a
    30-clip run, without a word (a helper's probe did, in this checkout). A place inside the plugins
    package is refused unless --replace-shipped (`make default-model`); checked before any training, and
    here on a new folder there, so that a failing check writes nothing over the shipped bundle."""
    from emolive.engine.bundle import BUNDLE_FILES, is_shipped
    from emolive.trainer.data.splits import LEARNED_CLIPS_FILE
    from emolive.trainer.history import HISTORY_FILE, SPLITS_FILE

    inside = DEFAULT_BUNDLE.parent / "refused-by-test"
    assert is_shipped(DEFAULT_BUNDLE) and is_shipped(inside) and not is_shipped(tmp_path)
    manifest = subset_manifest(tmp_path, "emodb", every=50)
    try:
        assert trainer_main(["train", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--out",
                             str(inside), "--epochs", "1"]) == 2
        assert "is inside emolive's installed models" in capsys.readouterr().err and not inside.exists()
    finally:
        shutil.rmtree(inside, ignore_errors=True)
    # every record a run writes beside its model is a bundle file (else replacing a bundle would refuse it)
    assert {HISTORY_FILE, SPLITS_FILE, LEARNED_CLIPS_FILE, "results.json"} <= BUNDLE_FILES
    assert {p.name for p in DEFAULT_BUNDLE.iterdir()} <= BUNDLE_FILES


def test_a_corpus_folder_whose_name_is_no_utf_8_trains_evaluates_and_reports(tmp_path, capsys):
    """A speaker id holds its manifest's folder name: a byte of it that is not UTF-8 had ended train (after
    the features), evaluate and report in a UnicodeEncodeError, where `emolive score` scored the clips."""
    import os

    plain = subset_manifest(tmp_path, "emodb", every=12)
    folder = tmp_path / os.fsdecode(b"corp\xffus")
    folder.mkdir()
    manifest = folder / "manifest.csv"
    manifest.write_bytes(plain.read_bytes())
    bundle = tmp_path / os.fsdecode(b"m\xfeodel")
    common = ["--data", str(manifest), "--cache", str(tmp_path / "cache")]
    assert trainer_main(["train", *common, "--epochs", "1", "--hidden", "16", "--epoch-clips", "0",
                         "--out", str(bundle)]) == 0
    assert trainer_main(["evaluate", "--model", str(bundle), *common, "--protocol", "clip"]) == 0
    assert trainer_main(["report", "--model", str(bundle), *common, "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "m\\xfeodel" in report  # the name as tables write it
    # its command, pasted into a shell, names the same files (it held the literal text \udcff)
    command = next(line for line in report.splitlines() if line.startswith("trainer report "))
    words = subprocess.run(["bash", "-c", f"printf '%s\\0' {command}"], capture_output=True, check=True).stdout
    assert os.fsencode(str(manifest)) in words.split(b"\0") and os.fsencode(str(bundle)) in words.split(b"\0")
    assert "Traceback" not in capsys.readouterr().err
    # a folder named as that byte is written is another corpus: their speakers had merged into one
    spelled = tmp_path / "corp\\xffus"
    spelled.mkdir()
    (spelled / "manifest.csv").write_bytes(plain.read_bytes())
    ids = [{u.speaker for u in read_manifest(m)} for m in (manifest, spelled / "manifest.csv")]
    assert ids[0] and not ids[0] & ids[1]


def test_out_names_the_current_folder_or_a_link_as_it_is_meant(tmp_path, monkeypatch, capsys):
    """`--out .` in an empty folder trained, then failed on Path('.') with a traceback and no bundle;
    a link to a bundle folder was said to be "not a directory"."""
    manifest = subset_manifest(tmp_path, "emodb", every=12)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    common = ["--data", str(manifest), "--cache", str(tmp_path / "cache"), "--epochs", "1", "--hidden", "16",
              "--epoch-clips", "0"]
    assert trainer_main(["train", *common, "--out", "."]) == 0
    assert (here / "config.json").is_file() and (here / "model.safetensors").is_file()
    (tmp_path / "link").symlink_to(here)
    assert trainer_main(["train", *common, "--out", str(tmp_path / "link")]) != 0
    assert "link: is a symbolic link; write the bundle to the folder itself" in capsys.readouterr().err


def test_model_options_expand_a_tilde_and_an_empty_path_is_one_line(trained, tmp_path, monkeypatch, capsys):
    """A bundle written with `--out=~/m` (the shell does not expand after '=') could not be named
    `--model=~/m`; `export --into-bundle ''` (an unset variable) was a traceback."""
    manifest, out, cache = trained
    monkeypatch.setenv("HOME", str(out.parent))
    assert trainer_main(["evaluate", f"--model=~/{out.name}", "--data", str(manifest), "--cache", str(cache),
                         "--protocol", "clip"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        trainer_main(["export", "--into-bundle", ""])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "argument --into-bundle: an empty path" in err and "Traceback" not in err


@pytest.mark.parametrize("training", [{"config": [1], "best_epoch": 3}, {"data": 5}, {"config": {"epochs": "1"},
                                                                                       "best_epoch": 0}])
def test_a_training_record_of_other_types_says_nothing_where_reports_and_the_gui_read_it(training):
    """A bundle is untrusted, and its training record free-form: these had ended `trainer report` and
    the GUI's model details in tracebacks, though the bundles load and score everywhere else."""
    from dataclasses import replace

    from emolive.engine.plugin import load_model
    from emolive.gui.provenance import provenance_text
    from emolive.trainer.report.build import _training_note

    meta = replace(load_model("student").meta, training=training)
    assert _training_note(meta.training) == "" and meta.trained_on == []
    assert "training data: not recorded" in provenance_text("m", meta)
