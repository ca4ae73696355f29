"""The Whisper teacher's encoder: installed weights checked by hash, every layer in PyTorch, in
agreement with CTranslate2's own encoder on real speech, on the front end's frame grid."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from emolive.engine.features import compute
from emolive.plugins.teacher import num_frames, parse_stream
from emolive.plugins.teacher.whisper import WhisperEncoder, WhisperFrameEncoder
from emolive.plugins.teacher.whisper_input import MAX_SAMPLES, log_mel, slaney_mel_filters
from emolive.plugins.teacher.whisper_weights import WHISPER_BASE, WhisperWeights, WhisperWeightsError
from emolive.trainer.embeddings import EmbeddingCache
from emolive.trainer.embeddings.cache import fill_layers
from tests.conftest import corpus_files, read_audio


@pytest.fixture(scope="module")
def encoder() -> WhisperEncoder:
    return WhisperEncoder(WHISPER_BASE.encoder_state())


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Real speech in two languages: German (EmoDB) and Amharic (ASED)."""
    return [read_audio(p) for p in corpus_files("emodb", every=200, limit=2) + corpus_files("ased", every=900, limit=2)]


def test_the_mel_filterbank_is_librosas_slaney_filterbank_whisper_was_trained_with():
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)
    # float64 arithmetic on both sides, rounded to float32 once: equal to float32 rounding
    np.testing.assert_allclose(slaney_mel_filters(), reference, rtol=0, atol=1e-7 * reference.max())


def test_the_log_mel_is_whispers_on_real_speech(clips):
    """Against librosa's power mel spectrogram (centred, reflect-padded periodic Hann frames, as
    Whisper's torch.stft), through Whisper's log10 floor and scaling: both in float64, ours rounded
    to float32 at the end, so they agree to float32 rounding of values of order 1 (1e-5 leaves
    10x), and a wrong window, hop, padding or floor misses by far more."""
    librosa = pytest.importorskip("librosa")
    for audio in (clips[0], clips[2][:16000 * 3 + 77]):
        power = librosa.feature.melspectrogram(y=audio.astype(np.float64), sr=16000, n_fft=400, hop_length=160,
                                               window="hann", center=True, pad_mode="reflect", power=2.0,
                                               n_mels=80, htk=False, norm="slaney")[:, :-1]
        logs = np.log10(np.maximum(power, 1e-10))
        want = (np.maximum(logs, logs.max() - 8.0) + 4.0) / 4.0
        got = log_mel(audio)
        assert got.shape == want.shape == (80, len(audio) // 160) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_the_encoder_agrees_with_ctranslate2_on_real_speech(encoder, clips, tmp_path):
    """Layer 7 is ctranslate2's `Whisper.encode` output, padded to 30 s (Whisper's training input)
    and unpadded. Both run float32 arithmetic on the same float16 weights; they differ only in the
    order of float32 sums (GEMM blocking, fused kernels), ~1e-7 relative per operation, grown
    through 6 layers with norms to ~2e-6 of the output's norm here: the bounds leave 50x (norm)
    and ~6x (largest element) for other BLAS and CPU builds, and a wrong layer, head split or
    activation misses them by orders of magnitude."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    folder = tmp_path / "whisper-base"
    folder.mkdir()
    with open(folder / "model.bin", "wb") as out:
        for part in WHISPER_BASE.part_files():
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        shutil.copy(WHISPER_BASE.part_files()[0].parent / name, folder / name)
    reference = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)
    padded = np.zeros(MAX_SAMPLES, np.float32)
    padded[:len(clips[0])] = clips[0]
    for audio in (padded, clips[2]):
        mel = log_mel(audio)[None]
        with torch.inference_mode():
            ours = encoder(torch.from_numpy(mel))[-1].numpy()
        theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(mel.copy())))
        assert ours.shape == theirs.shape
        assert np.linalg.norm(ours - theirs) <= 1e-4 * np.linalg.norm(theirs)
        assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_the_onnxruntime_graph_gives_the_torch_encoders_layers_on_real_speech(encoder, clips):
    """whisper_graph builds the live teacher's encoder from the same weights: layers 2, 5 and 7 of
    the graph against the module's, through `embed_layers` (pieces, frame grid). Both float32; the
    measured difference is ~4e-6 of the norm (sum order, as against ctranslate2 above), so 1e-4
    holds on any BLAS or CPU, and a wrong head split, scale, norm or activation misses it by far."""
    from emolive.plugins.teacher.whisper_graph import WhisperGraphEncoder

    graph, module = WhisperGraphEncoder(WHISPER_BASE, [2, 5, 7]), WhisperFrameEncoder(encoder)
    for audio in (clips[1], clips[3], clips[0][:721]):
        for ours, theirs in zip(graph.embed_layers(audio, [7, 2, 5]), module.embed_layers(audio, [7, 2, 5])):
            assert ours.shape == theirs.shape == (num_frames(len(audio)), 512)
            assert np.linalg.norm(ours - theirs) <= 1e-4 * np.linalg.norm(theirs)
    with pytest.raises(ValueError, match="gives layers"):
        graph.embed_layers(clips[0], [3])


def test_every_layer_has_the_front_ends_frame_count(encoder, clips):
    frames = WhisperFrameEncoder(encoder)
    for audio in [*clips[:2], clips[0][:399], clips[0][:400], clips[0][:721]]:
        layers = frames.embed_layers(audio, list(range(1, 8)))
        assert [x.shape for x in layers] == [(num_frames(len(audio)), 512)] * 7
        assert num_frames(len(audio)) == len(compute(audio))
    with pytest.raises(ValueError, match="1..7"):
        frames.embed_layers(clips[0], [8])


def test_a_long_input_is_encoded_in_30_s_pieces_whose_frames_are_joined(encoder, clips):
    frames = WhisperFrameEncoder(encoder)
    long = np.concatenate([clips[0]] * int(np.ceil(1.2 * MAX_SAMPLES / len(clips[0]))))[: MAX_SAMPLES + 16000]
    whole = frames.embed_layers(long, [2])[0]
    assert whole.shape == (num_frames(len(long)), 512)
    alone = frames.embed_layers(long[:MAX_SAMPLES], [2])[0]  # its last frame is past num_frames(30 s)
    np.testing.assert_array_equal(whole[:len(alone)], alone)


def test_layers_of_one_pass_are_what_each_layer_gives_alone_and_are_cached(tmp_path):
    paths = corpus_files("emodb", every=300, limit=2)
    caches = [EmbeddingCache(tmp_path, parse_stream(f"whisper-base:{layer}"), "cpu") for layer in (2, 7)]
    fill_layers(caches, paths, progress=False)
    assert not any(c.missing(paths) for c in caches)
    alone = WhisperFrameEncoder(WhisperEncoder(WHISPER_BASE.encoder_state()))
    for cache in caches:
        got = cache.embeddings(paths, progress=False)
        want = alone.embed([read_audio(p) for p in paths], cache.stream.layer)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)  # the same computation, one clip at a time


def test_missing_or_altered_weights_are_one_line_errors_naming_the_fix(tmp_path, monkeypatch):
    missing = WhisperWeights("whisper-base", ("no_such_whisper_part1", "no_such_whisper_part2"), 1, "0" * 64)
    with pytest.raises(WhisperWeightsError, match=r"no-such-whisper-part1 is not installed: run `make setup`") as err:
        missing.encoder_state()
    assert "\n" not in str(err.value)
    # a copy of the installed parts, one byte changed: the hash check refuses it
    for number, part in enumerate(WHISPER_BASE.part_files(), 1):
        package = tmp_path / f"altered_whisper_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        shutil.copy(part, package / "data" / part.name)
    target = tmp_path / "altered_whisper_part2" / "data" / "model.bin.part2"
    with open(target, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    monkeypatch.syspath_prepend(str(tmp_path))
    altered = WhisperWeights("whisper-base", ("altered_whisper_part1", "altered_whisper_part2"),
                             WHISPER_BASE.size, WHISPER_BASE.sha256)
    with pytest.raises(WhisperWeightsError, match="sha256 is not the published one: run `make setup`"):
        altered.encoder_state()
    target.write_bytes(b"\x06\x00\x00\x00")  # truncated
    with pytest.raises(WhisperWeightsError, match="bytes, not"):
        altered.encoder_state()


def test_weight_parts_installed_as_links_are_read(tmp_path, monkeypatch):
    """uv's symlink installs put links where pip puts files: they were called "not installed", which
    `make setup` could not fix. The hash check vouches for what the links lead to."""
    for number, part in enumerate(WHISPER_BASE.part_files(), 1):
        package = tmp_path / f"linked_whisper_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / part.name).symlink_to(part)
    monkeypatch.syspath_prepend(str(tmp_path))
    linked = WhisperWeights("whisper-base", ("linked_whisper_part1", "linked_whisper_part2"),
                            WHISPER_BASE.size, WHISPER_BASE.sha256)
    assert [p.is_symlink() for p in linked.part_files()] == [True, True]
    assert "encoder/layer_0/self_attention/linear_0/weight" in linked.encoder_state()
