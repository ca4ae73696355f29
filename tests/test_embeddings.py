"""SSL frame embeddings: framing against the front end, layers, batching, hub/checkpoint weights, caching, fusion."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from emolive.engine.features import compute
from emolive.plugins.teacher import (PRETRAINED, MissingWeightsError, SSLEncoder, fuse, load_pretrained, num_frames,
                             parse_stream)
from tests.conftest import corpus_files, read_audio
from tests.tiny_ssl import LAYERS, hub, install, random_model, save_hub_weights, tiny  # noqa: F401 (fixture)
from emolive.trainer.cli import main as trainer_main
from emolive.trainer.data import FeatureCache, Utterance
from emolive.trainer.data.augment import AugmentConfig
from emolive.trainer.data.cache import AugmentedView
from emolive.trainer.embeddings import EmbeddingCache, EmbeddingFeatures, parse_streams
from emolive.trainer.embeddings import cache as cache_module


def encoder(name: str, seed: int = 0) -> SSLEncoder:
    spec = tiny(name)
    return SSLEncoder(random_model(spec, seed), spec.normalize_waveform, "cpu")


@pytest.mark.parametrize("name", ["wav2vec2-base", "hubert-large"])  # group-norm and layer-norm conv stacks
def test_frame_count_is_the_front_ends_for_any_length(name, speech):
    enc = encoder(name)
    for n in (399, 400, 719, 720, 16000, 48123):
        x = speech[:n]
        emb = enc.embed([x], LAYERS)[0]
        assert emb.shape == (num_frames(n), 32) == (len(compute(x)), 32) == (1 + (n - 400) // 320 if n >= 400 else 0, 32)


@torch.no_grad()
def test_frame_k_covers_samples_320k_to_320k_plus_400():
    model = random_model(tiny("hubert-large"))  # layer-norm conv stack: frames are independent
    x = torch.randn(1, 4000)
    base, _ = model.feature_extractor(x, None)
    for j in (0, 399, 400, 1000, 1919, 3999):
        y = x.clone()
        y[0, j] += 1.0
        changed = (model.feature_extractor(y, None)[0] - base).abs().amax(-1)[0] > 0
        assert set(np.flatnonzero(changed.numpy())) == {k for k in range(len(changed)) if 320 * k <= j < 320 * k + 400}


def test_layer_choice_returns_that_transformer_layers_output(speech):
    enc = encoder("hubert-base")
    x = speech[:16000]
    with torch.inference_mode():
        layers, _ = enc.model.extract_features(torch.from_numpy(x)[None])
    # the same torchaudio graph on the same input and shape: differences only where a kernel rounds
    # differently run to run (none expected); 1e-5 is ~100 ulp of the order-1 activations
    for layer in (1, 2):
        np.testing.assert_allclose(enc.embed([x], layer)[0], layers[layer - 1][0].numpy(), atol=1e-5)
    assert not np.allclose(enc.embed([x], 1)[0], enc.embed([x], 2)[0])
    for bad in (0, LAYERS + 1):
        with pytest.raises(ValueError, match="layer"):
            enc.embed([x], bad)
    assert parse_stream("hubert-large").layer == 24 and parse_stream("hubert-large:7").layer == 7
    with pytest.raises(ValueError, match=r"hubert-large has transformer layers 1\.\.24, not 25"):
        parse_stream("hubert-large:25")
    with pytest.raises(ValueError,
                       match=r"layers 1\.\.7 \(1-6 the transformer layers, 7 layer 6 after the final norm\)"):
        parse_stream("whisper-base:8")  # its 7th is no transformer layer
    with pytest.raises(ValueError, match="known: whisper-base, wav2vec2-base"):
        parse_stream("hubert-huge")


def test_batches_equal_one_utterance_at_a_time(speech):
    enc = encoder("hubert-large")
    enc.batch_samples = 100_000
    waves = [speech[:30000], speech[5000:45000], speech[:300], speech[1000:17000]]
    assert enc._batches([1, 0, 3], [len(w) for w in waves]) == [[1, 0], [3]]  # the padded size caps a batch
    batched = enc.embed(waves, 2)
    # padded batch vs alone: attention masks the padding exactly, but the batch shape changes the GEMM
    # blocking (summation order) over K = 1024 features: ~sqrt(1024) ulp per layer on activations that
    # reach ~10 in random-weight HuBERT-large, so ~1e-5 per layer; 2e-4 covers two layers and the CNN
    for wave, got in zip(waves, batched):
        np.testing.assert_allclose(got, enc.embed([wave], 2)[0], atol=2e-4)
    # group norm over time would see the padding: base models run one utterance per batch
    assert encoder("wav2vec2-base")._batches([1, 0, 3], [len(w) for w in waves]) == [[1], [0], [3]]


@pytest.mark.parametrize("name", ["hubert-large", "hubert-large-960h", "wav2vec2-base"])
def test_bundle_get_model_loads_hub_cache_weights_offline(name, hub, speech):
    spec = tiny(name)
    assert spec.hub_file() == hub / PRETRAINED[name].pipeline_bundle._path
    state = save_hub_weights(spec, seed=3)
    model = load_pretrained(spec)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # what torchaudio's own wrapper gives (it normalises large models' waveforms) is what we embed
    wrapped = spec.pipeline_bundle.get_model(dl_kwargs={"weights_only": True})
    x = speech[:24000]
    with torch.inference_mode():
        expected, _ = wrapped.extract_features(torch.from_numpy(x)[None], num_layers=2)
    got = SSLEncoder(model, spec.normalize_waveform, "cpu").embed([x], 2)[0]
    # our normalisation and torchaudio's wrapper compute the same float32 ops in a different order
    # (layer-norm of the waveform): a few ulp of order-1 values per op through two layers, well below 1e-4
    np.testing.assert_allclose(got, expected[1][0].numpy(), atol=1e-4)


def test_missing_weights_name_the_file_and_the_fetch_command(hub, tmp_path, capsys):
    with pytest.raises(MissingWeightsError) as err:
        load_pretrained(PRETRAINED["hubert-large-960h"])
    message = str(err.value)
    assert str(hub / "hubert_fairseq_large_ll60k_asr_ls960.pth") in message
    assert 'python -c "import torchaudio; torchaudio.pipelines.HUBERT_ASR_LARGE.get_model()"' in message
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker,emotion\n{corpus_files('emodb', limit=1)[0]},03,happy\n")
    assert trainer_main(["embed", "--bundle", "hubert-large", "--data", str(manifest),
                         "--cache", str(tmp_path / "cache")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "hubert_fairseq_large_ll60k.pth" in lines[0] and "HUBERT_LARGE.get_model()" in lines[0]


def test_checkpoints_load_weights_only(tmp_path, speech):
    spec = tiny("hubert-base")
    state = random_model(spec, seed=5).state_dict()
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pt")
    for path in (tmp_path / "w.safetensors", tmp_path / "w.pt"):
        loaded = load_pretrained(spec, path).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())

    class Payload:  # a pickle that would run code on a plain torch.load
        def __reduce__(self):
            return (print, ("pwned",))
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"w": Payload()}, f, protocol=2)
    with pytest.raises(ValueError, match="weights-only"):
        load_pretrained(spec, tmp_path / "evil.pt")
    torch.save(random_model(tiny("hubert-large")).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a hubert-base state dict"):
        load_pretrained(spec, tmp_path / "other.pt")


def test_cache_computes_once_per_model_layer_and_file(hub, tmp_path, monkeypatch):
    spec, = install(monkeypatch, "hubert-large")
    save_hub_weights(spec)
    paths = corpus_files("emodb", every=200, limit=3)
    paths = paths + paths[:1]  # a repeated file is embedded once
    calls = []
    real_embed = SSLEncoder.embed
    monkeypatch.setattr(SSLEncoder, "embed", lambda self, w, layer: calls.append(len(w)) or real_embed(self, w, layer))
    first = EmbeddingCache(tmp_path / "c", parse_stream("hubert-large")).embeddings(paths, progress=False)
    assert calls == [3] and [len(e) for e in first] == [num_frames(len(read_audio(p))) for p in paths]

    def no_model(*args):
        raise AssertionError("a cached entry loaded the pretrained model")
    monkeypatch.setattr(cache_module, "load_encoder", no_model)
    again = EmbeddingCache(tmp_path / "c", parse_stream("hubert-large:2")).embeddings(paths, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # :2 is the last layer: the same entries
    with pytest.raises(AssertionError, match="pretrained"):
        EmbeddingCache(tmp_path / "c", parse_stream("hubert-large:1")).embeddings(paths, progress=False)
    save_file(random_model(spec).state_dict(), str(tmp_path / "mine.safetensors"))
    local = EmbeddingCache(tmp_path / "c", parse_stream(f"hubert-large@{tmp_path / 'mine.safetensors'}"))
    assert local.store.dir.parent != EmbeddingCache(tmp_path / "c", parse_stream("hubert-large")).store.dir.parent


def test_a_clip_too_short_for_a_frame_is_refused_as_the_students_features_refuse_it(hub, tmp_path, monkeypatch,
                                                                                       speech):
    """A teacher had embedded a 100-sample clip as no frame and trained on it as one zero frame, where the
    student's training, `trainer evaluate` and the engine refuse it; `mfb` fused with embeddings had been
    called an unknown pretrained model."""
    import soundfile as sf

    from emolive.trainer.errors import TrainerError

    spec, = install(monkeypatch, "hubert-large")
    save_hub_weights(spec)
    short, whole = tmp_path / "short.wav", tmp_path / "whole.wav"
    sf.write(short, speech[:100], 16000)
    sf.write(whole, speech[:16000], 16000)
    cache = EmbeddingCache(tmp_path / "c", parse_stream("hubert-large"))
    with pytest.raises(TrainerError, match=f"cannot embed {short}: shorter than one 25 ms frame"):
        cache.embeddings([whole, short], progress=False)
    with pytest.raises(TrainerError, match="mfb, the front end's features .* is not fused with embeddings"):
        parse_streams("mfb,hubert-large:1")


def test_fusion_concatenates_streams_frame_by_frame(hub, tmp_path, monkeypatch):
    for i, spec in enumerate(install(monkeypatch, "hubert-large", "hubert-large-960h")):
        save_hub_weights(spec, seed=i)
    streams = parse_streams("hubert-large,hubert-large-960h:1")
    source = EmbeddingFeatures(tmp_path / "c", streams)
    utts = [Utterance(p, "s", "neutral", "", 4.0, 4.0, 4.0) for p in corpus_files("ravdess", every=500, limit=2)]
    fused = source.features_for(utts, progress=False)
    parts = [EmbeddingCache(tmp_path / "c", s).embeddings([u.path for u in utts], progress=False) for s in streams]
    assert source.dim == 64
    for f, a, b in zip(fused, *parts):
        assert f.shape == (len(a), 64) and np.array_equal(f[:, :32], a) and np.array_equal(f[:, 32:], b)
    with pytest.raises(ValueError, match="frame count"):
        fuse([np.zeros((3, 2)), np.zeros((4, 2))])
    with pytest.raises(ValueError, match="twice"):
        parse_streams("hubert-large,hubert-large:2")


def test_views_embed_the_chains_the_front_end_hears_and_are_cached(hub, tmp_path, monkeypatch):
    """A teacher's augmented views are the student's: the same chain per clip and view (observable
    through the speed step, the one that changes a clip's length), each embedded once."""
    for i, spec in enumerate(install(monkeypatch, "hubert-large", "hubert-large-960h")):
        save_hub_weights(spec, seed=i)
    streams = parse_streams("hubert-large,hubert-large-960h:1")
    utts = [Utterance(p, "s", "neutral", "", 4.0, 4.0, 4.0) for p in corpus_files("ravdess", every=500, limit=2)]
    chain = AugmentConfig(p_speed=1.0, p_noise=1.0)
    source = EmbeddingFeatures(tmp_path / "c", streams)
    views = source.views_for(utts, 2, chain, progress=False)
    heard = FeatureCache(tmp_path / "f").views_for(utts, 2, chain, progress=False)
    clean = source.features_for(utts, progress=False)
    for v, (view, front) in enumerate(zip(views, heard), start=1):
        for u, emb, feats, plain in zip(utts, view, front, clean):
            assert emb.shape == (len(feats), 64) and len(emb) != len(plain)
            samples = AugmentedView(u.path, v, chain).samples()
            expected = [c.encoder().embed([samples], c.stream.layer)[0] for c in source.caches]
            # a batch of views against one alone: the GEMM blocking bound of test_batches_equal_one_utterance_at_a_time
            np.testing.assert_allclose(emb, fuse(expected), atol=2e-4)

    def no_model(*args):
        raise AssertionError("a cached view loaded the pretrained model")
    monkeypatch.setattr(cache_module, "load_encoder", no_model)
    again = EmbeddingFeatures(tmp_path / "c", streams).views_for(utts, 2, chain, progress=False)
    assert all(np.array_equal(a, b) for x, y in zip(views, again) for a, b in zip(x, y))


def test_embed_help_lists_the_six_bundles(capsys):
    with pytest.raises(SystemExit):
        trainer_main(["embed", "--help"])
    out = capsys.readouterr().out
    for name in ("wav2vec2-base", "wav2vec2-base-100h", "wav2vec2-large-100h", "hubert-base", "hubert-large",
                 "hubert-large-960h", "HUBERT_ASR_LARGE"):
        assert name in out


def test_a_checkpoint_that_is_no_model_file_is_one_teacher_error(tmp_path):
    """A typo, a folder, /dev/null, a text file named .pt or .safetensors: tracebacks (FileNotFoundError,
    IsADirectoryError, KeyError, SafetensorError) before; and "name:" (a layer left out) read as the last."""
    from emolive.plugins.teacher.pretrained import TeacherError, parse_stream, read_checkpoint
    from emolive.trainer.embeddings.cache import weights_id

    (tmp_path / "text.pt").write_text("hello\n")
    (tmp_path / "text.safetensors").write_text("hello\n")
    for path, message in ((tmp_path / "typo.pt", "does not exist"), (tmp_path, "is not a regular file"),
                          ("/dev/null", "is not a regular file"), (tmp_path / "text.pt", "not a weights-only torch"),
                          (tmp_path / "text.safetensors", "not a safetensors file")):
        with pytest.raises(TeacherError, match=message):
            read_checkpoint(path)
    with pytest.raises(TeacherError, match="does not exist"):
        weights_id(parse_stream(f"hubert-base:3@{tmp_path / 'typo.pt'}"))
    with pytest.raises(TeacherError, match="must be a number"):
        parse_stream("whisper-base:")
    with pytest.raises(TeacherError, match="it takes no checkpoint"):
        parse_stream(f"whisper-base:5@{tmp_path / 'text.pt'}")
    # refused before a cache folder is made for it (one was left behind)
    from emolive.trainer.cli import main as trainer_main

    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker,emotion\n{corpus_files('emodb', limit=1)[0]},s,sad\n")
    assert trainer_main(["embed", "--data", str(manifest), "--cache", str(tmp_path / "cache"), "--bundle",
                         "whisper-base:5", "--checkpoint", str(tmp_path / "text.pt")]) == 2
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("device", ["foo", "cuda:99"])
def test_a_device_this_machine_lacks_is_refused_before_any_work(tmp_path, capsys, device):
    """`--device cuda` without a GPU (or a name torch does not know) was a traceback after the 145 MB
    encoder had loaded, leaving a cache folder of only its about.json."""
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,emotion\n{corpus_files('emodb', limit=1)[0]},happy\n")
    with pytest.raises(SystemExit) as exit_:
        trainer_main(["embed", "--data", str(manifest), "--cache", str(tmp_path / "cache"),
                      "--bundle", "whisper-base:5", "--device", device])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and err.startswith(f"trainer embed: error: argument --device: '{device}' is not a "
                                                    "torch device this machine has (")
    assert not (tmp_path / "cache").exists()


def test_a_pretrained_model_that_does_not_load_leaves_no_cache_folder(tmp_path, monkeypatch, capsys):
    """`trainer embed` of a model whose weights are not on this machine failed on one line but left a
    cache folder holding only about.json: the folder is now made with the first entry."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no hub checkpoints there
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker,emotion\n{corpus_files('emodb', limit=1)[0]},s,sad\n")
    assert trainer_main(["embed", "--data", str(manifest), "--cache", str(tmp_path / "cache"),
                         "--bundle", "hubert-base:3"]) == 2
    assert "hubert-base needs pretrained weights" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
