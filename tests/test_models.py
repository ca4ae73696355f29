"""Student GRU/TCGRU modules: shapes, size, padding invariance, normalisation, label range."""
import numpy as np
import pytest
import torch

from emolive.plugins.student import ARCHITECTURES, GRUModel, TCGRUModel


def _model(arch: str, n_classes: int = 7, seed: int = 0):
    torch.manual_seed(seed)
    return ARCHITECTURES[arch](input_dim=43, n_classes=n_classes).eval()


def test_registry_names_match_classes():
    assert ARCHITECTURES == {"gru": GRUModel, "tcgru": TCGRUModel}


@pytest.mark.parametrize("arch", ["gru", "tcgru"])
@pytest.mark.parametrize("n_classes", [0, 7])
def test_output_shapes(arch, n_classes):
    out = _model(arch, n_classes)(torch.randn(4, 50, 43), torch.tensor([50, 30, 10, 1]))
    assert out["avd"].shape == (4, 3)
    assert out["logits"].shape == (4, n_classes)
    assert out["embedding"].shape == (4, 128)


def test_tcgru_size_matches_paper():
    """Section 3.4: the MFB+F0 model is about 0.2 M parameters (0.8 MB fp32)."""
    n = sum(p.numel() for p in _model("tcgru", 7).parameters())
    assert 190_000 < n < 210_000, n
    conv = _model("tcgru").time_conv
    assert conv.groups == 43 and conv.kernel_size == (3,) and conv.weight.shape == (43, 1, 3)


def test_tcgru_feeds_conv_and_skip_to_gru():
    assert _model("tcgru").gru.input_size == 86
    assert _model("gru").gru.input_size == 43


@pytest.mark.parametrize("arch", ["gru", "tcgru"])
def test_padding_does_not_change_outputs(arch):
    """A padded batch gives each utterance the same outputs as running it alone."""
    model = _model(arch)
    model.set_normalisation(torch.randn(43), torch.rand(43) + 0.5)
    a, b = torch.randn(1, 40, 43), torch.randn(1, 25, 43)
    batch = torch.zeros(2, 40, 43)
    batch[0], batch[1, :25] = a[0], b[0]
    batch[1, 25:] = 99.0  # garbage in the padding must not leak
    with torch.no_grad():
        together = model(batch, torch.tensor([40, 25]))
        alone = [model(a), model(b)]
    # Same weights and inputs, only the batch shape differs: a BLAS may pick another blocking (summation
    # order) per shape, which changes a float32 dot product of K <= 256 terms by ~sqrt(K) ulp (~2e-6 on
    # values of order 1), through a few layers; padding leaking in would move outputs by >> 1e-2.
    for key in ("avd", "logits", "embedding"):
        for i in range(2):
            torch.testing.assert_close(together[key][i], alone[i][key][0], atol=1e-5, rtol=1e-5)


def test_normalisation_is_applied_and_stored_as_buffers():
    model = _model("tcgru")
    x = torch.randn(2, 20, 43) * 5 + 3
    with torch.no_grad():
        unnormalised = model(x)["avd"]
        model.set_normalisation(torch.full((43,), 3.0), torch.full((43,), 5.0))
        inside = model(x)["avd"]
        model.set_normalisation(torch.zeros(43), torch.ones(43))
        outside = model((x - 3) / 5)["avd"]
    torch.testing.assert_close(inside, outside)  # float32 defaults (1e-5 rel): one subtraction/division apart
    assert not torch.allclose(unnormalised, outside)
    assert {"feature_mean", "feature_std"} <= set(model.state_dict())


def test_std_floor_keeps_constant_features_finite():
    model = _model("gru")
    model.set_normalisation(torch.zeros(43), torch.zeros(43))
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 5, 43))["avd"]).all()


def test_outputs_stay_on_label_scale():
    model = _model("tcgru")
    with torch.no_grad():
        model.regression.weight.mul_(1000)  # drive tanh into saturation
        avd = model(torch.randn(8, 30, 43) * 10)["avd"]
    assert avd.min() >= 1.0 and avd.max() <= 7.0
    assert avd.max() - avd.min() > 3.0  # saturated outputs reach both ends, not a constant


def test_gradients_reach_every_parameter():
    model = _model("tcgru").train()
    out = model(torch.randn(3, 12, 43), torch.tensor([12, 8, 4]))
    (out["avd"].sum() + out["logits"].sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_gain_dims_make_the_model_blind_to_microphone_gain():
    """A gain change adds one constant to every log mel energy; with gain_dims the outputs stay put,
    while the other columns (pitch) still matter."""
    torch.manual_seed(0)
    model = TCGRUModel(43, n_classes=4, gain_dims=40).eval()
    x = torch.randn(2, 90, 43)
    louder = x.clone()
    louder[:, :, :40] += 2.3  # +20 dB
    with torch.no_grad():
        a, b = model(x), model(louder)
        pitch_moved = x.clone()
        pitch_moved[:, :, 40] += 0.5
        c = model(pitch_moved)
    # remove_gain subtracts the window's loudest log energy, so +2.3 on every mel bin cancels up to one
    # float32 rounding of values ~10 (~1e-6), on any CPU; a pitch shift must move the output (>> 1e-4)
    for key in ("avd", "logits", "embedding"):
        assert torch.allclose(a[key], b[key], atol=1e-5)
    assert not torch.allclose(a["avd"], c["avd"], atol=1e-4)


def test_default_student_hears_a_quieter_microphone_about_the_same():
    """-10 dB of microphone gain: the mel part is exactly gain-blind (remove_gain + training with
    random gains), what remains comes from quiet frames meeting the front end's absolute floors
    (log energy floor, the pitch tracker's -70 dBFS initial noise floor). Without the gain
    handling the same clips moved by 2-4 points of the 1-7 scale."""
    from emolive.engine.features import compute
    from emolive.engine.features.normalise import as_one_stream
    from emolive.plugins.student import load_default
    from tests.conftest import corpus_files, read_audio

    plugin = load_default()
    moved = []
    for path in corpus_files("ravdess", every=300) + corpus_files("emodb", every=100):
        clip = read_audio(path)
        loud, quiet = (plugin.predict(as_one_stream(compute(clip * g), plugin.meta.stream_normalisation), clip * g).avd
                       for g in (1.0, 0.316))
        moved.append(np.abs(loud - quiet).max())
    # Behaviour bounds on the 1-7 scale, not rounding ones: rounding differences between builds move an
    # estimate by ~1e-5, four orders below these; without gain handling clips moved by 2-4.
    assert np.mean(moved) < 0.5
    # a 2 s clip heard alone is normalised mostly by the stream normaliser's prior (5 s of speech), so
    # a gain change reaches the model through the quiet bins' floor: measured median 0.32 on the default
    assert np.median(moved) < 0.4


@pytest.mark.parametrize("arch", ["gru", "tcgru"])
def test_dropout_acts_in_training_only_and_adds_no_weights(arch):
    """A model trained with dropout is stored and served as the same module without it."""
    torch.manual_seed(0)
    dropped = ARCHITECTURES[arch](input_dim=43, n_classes=4, dropout=0.5)
    plain = ARCHITECTURES[arch](input_dim=43, n_classes=4)
    assert set(dropped.state_dict()) == set(plain.state_dict())
    plain.load_state_dict(dropped.state_dict())
    x = torch.randn(3, 30, 43)
    with torch.no_grad():
        served = [m.eval()(x) for m in (dropped, plain)]
        trained = dropped.train()(x)
    for key in ("avd", "logits"):
        assert torch.equal(served[0][key], served[1][key])  # the same operations on the same weights
        # half the embedding's units zeroed (the others doubled) moves every head output
        assert not torch.allclose(trained[key], served[0][key], atol=1e-3)
    torch.testing.assert_close(trained["embedding"], served[0]["embedding"])  # distillation reads it undropped
