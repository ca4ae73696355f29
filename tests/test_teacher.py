"""The teacher: bundles that record their streams, the engine plugin end to end, training on fused embeddings."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from emolive.engine.bundle import BundleError
from emolive.engine.features import compute
from emolive.engine.plugin import load_model
from emolive.plugins.student import TCGRUModel
from emolive.plugins.teacher import (MissingWeightsError, SSLEncoder, TeacherPlugin,
                             load_pretrained, load_teacher, load_teacher_bundle, save_teacher_bundle)
from tests.test_trainer import subset_manifest
from tests.tiny_ssl import hub, install, save_hub_weights  # noqa: F401 (fixture)
from emolive.trainer.cli import main as trainer_main
from emolive.trainer.embeddings import cache as cache_module
from emolive.trainer.embeddings import parse_streams

CLASSES = ["angry", "happy", "neutral", "sad"]


@pytest.fixture
def tiny_teacher(hub, tmp_path, monkeypatch):
    """Tiny HuBERT large + large 960h with random hub weights, and a random TCGRU bundle on their fusion."""
    for seed, spec in enumerate(install(monkeypatch, "hubert-large", "hubert-large-960h")):
        save_hub_weights(spec, seed)
    torch.manual_seed(0)
    model = TCGRUModel(64, n_classes=len(CLASSES), hidden=16, embedding_dim=8).eval()
    streams = parse_streams("hubert-large,hubert-large-960h:1")
    return save_teacher_bundle(tmp_path / "teacher", model, streams, CLASSES), model, streams


def test_teacher_predicts_a_window_like_its_pieces_run_by_hand(tiny_teacher, speech):
    path, model, streams = tiny_teacher
    with pytest.warns(RuntimeWarning, match="CPU"):
        plugin = load_model(str(path))  # through the architecture entry point, as the engine does
    assert isinstance(plugin, TeacherPlugin) and plugin.device == "cpu"
    window = speech[16000:64000]  # 3 s
    pred = plugin.predict(compute(window), window)
    assert np.isfinite(pred.avd).all() and ((pred.avd >= 1) & (pred.avd <= 7)).all()
    # a float32 softmax sums to 1 within a few ulp (4 terms) on any CPU
    assert pred.class_probs.shape == (4,) and pred.class_probs.sum() == pytest.approx(1, abs=1e-5)

    parts = [SSLEncoder(load_pretrained(s.spec), s.spec.normalize_waveform, "cpu").embed([window], s.layer)[0]
             for s in streams]
    assert [p.shape for p in parts] == [(149, 32), (149, 32)] and len(compute(window)) == 149
    with torch.inference_mode():
        out = model(torch.from_numpy(np.concatenate(parts, axis=1))[None])
    # the plugin runs the same module on the same tensors (one utterance, same shape): only run-to-run
    # kernel rounding can differ, a few ulp of order-1 outputs
    np.testing.assert_allclose(pred.avd, out["avd"][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(pred.embedding, out["embedding"][0].numpy(), atol=1e-5)
    assert plugin.size_bytes() > (path / "model.safetensors").stat().st_size


def test_bundle_records_streams_and_must_fit_their_width(tiny_teacher, tmp_path):
    path, _, streams = tiny_teacher
    config = json.loads((path / "config.json").read_text())
    assert config["architecture"] == "teacher-tcgru"
    assert config["hyperparameters"]["streams"] == [
        {"model": "hubert-large", "layer": 2, "checkpoint": None},
        {"model": "hubert-large-960h", "layer": 1, "checkpoint": None}]
    assert load_teacher_bundle(path)[2] == streams
    with pytest.raises(BundleError, match="input_dim 50 but the streams hubert-large:2, hubert-large-960h:1 give 64"):
        save_teacher_bundle(tmp_path / "bad", TCGRUModel(50, n_classes=4), streams, CLASSES)


@pytest.mark.parametrize("edit, message", [
    ({"layer": "1"}, "its layer a whole number, got 'hubert-large-960h' and '1'"),
    ({"checkpoint": {"a": 1}}, "a stream's checkpoint is a path or null, got {'a': 1}"),
    ({"evil": 1}, "a stream is an object of the fields checkpoint, layer, model, weights_sha256"),
    ({"model": 5}, "a stream's model is a name"),
])
def test_a_stream_record_of_the_wrong_type_is_refused(tiny_teacher, edit, message):
    """A layer given as text, a checkpoint that is an object and unknown fields had loaded and run."""
    path, _, _ = tiny_teacher
    config = json.loads((path / "config.json").read_text())
    config["hyperparameters"]["streams"][1].update(edit)
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=re.escape(message)):
        load_teacher_bundle(path)


@pytest.mark.filterwarnings("ignore:the teacher runs")
def test_a_bundle_without_its_pretrained_weights_says_what_to_fetch(tiny_teacher):
    path, _, streams = tiny_teacher
    streams[1].spec.hub_file().unlink()
    with pytest.raises(MissingWeightsError, match="HUBERT_ASR_LARGE.get_model()"):
        load_teacher(path, device="cpu")


def test_train_on_cached_fused_embeddings_writes_a_teacher_bundle(hub, tmp_path, monkeypatch):
    """`trainer embed --views 1` leaves the training of a teacher on one view nothing to embed."""
    for seed, spec in enumerate(install(monkeypatch, "hubert-large", "hubert-large-960h")):
        save_hub_weights(spec, seed)
    manifest, cache = str(subset_manifest(tmp_path, "ravdess", every=60)), str(tmp_path / "cache")
    assert trainer_main(["embed", "--bundle", "hubert-large", "--bundle", "hubert-large-960h",
                         "--data", manifest, "--cache", cache, "--views", "1"]) == 0

    def no_model(*args):
        raise AssertionError("training re-ran a pretrained model")
    monkeypatch.setattr(cache_module, "load_encoder", no_model)
    out = tmp_path / "bundle"
    assert trainer_main(["train", "--features", "hubert-large,hubert-large-960h", "--data", manifest,
                         "--cache", cache, "--epochs", "1", "--epoch-clips", "0", "--test-frac", "0.2", "--views", "1",
                         "--out", str(out)]) == 0
    model, meta, streams = load_teacher_bundle(out)
    assert model.input_dim == 64 and [s.label() for s in streams] == ["hubert-large:2", "hubert-large-960h:2"]
    assert meta.training["features"] == "hubert-large,hubert-large-960h"
