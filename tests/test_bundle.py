"""Model bundles: exact fp32 round trip, int8 storage, and clear errors on damaged bundles."""
import json

import pytest
import torch

from emolive.engine.bundle import CONFIG_FILE, WEIGHTS_FILE, BundleError, read_bundle
from emolive.engine.features.config import FrontEndConfig
from emolive.plugins.student import TCGRUModel, load_bundle, save_bundle

CLASSES = ("angry", "happy", "neutral", "sad")


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = TCGRUModel(input_dim=43, n_classes=len(CLASSES))
    m.set_normalisation(torch.randn(43), torch.rand(43) + 0.1)
    return m.eval()


@pytest.fixture
def bundle(tmp_path, model):
    return save_bundle(tmp_path / "b", model, FrontEndConfig(), CLASSES, training={"corpora": ["emodb"]}, metrics={"ccc": 0.5})


def _edit_config(path, change):
    config = json.loads((path / CONFIG_FILE).read_text())
    change(config)
    (path / CONFIG_FILE).write_text(json.dumps(config))


def test_fp32_round_trip_is_exact(bundle, model):
    loaded, meta = load_bundle(bundle)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert meta.architecture == "tcgru" and meta.class_names == CLASSES
    assert meta.frontend == FrontEndConfig() and meta.label_scale == (1.0, 7.0)
    assert meta.training == {"corpora": ["emodb"]} and meta.metrics == {"ccc": 0.5}
    assert not loaded.training


def test_int8_round_trip_is_close_and_small(tmp_path, model):
    path = save_bundle(tmp_path / "q", model, FrontEndConfig(), CLASSES, int8=True)
    fp32 = save_bundle(tmp_path / "f", model, FrontEndConfig(), CLASSES)
    assert json.loads((path / CONFIG_FILE).read_text())["weights"] == "int8"
    loaded, _ = load_bundle(path)
    for name, tensor in model.state_dict().items():
        got = loaded.state_dict()[name]
        if tensor.dim() >= 2:
            step = tensor.abs().flatten(1).amax(1) / 127  # per-channel quantisation step
            assert ((got - tensor).abs().flatten(1).amax(1) <= step / 2 + 1e-7).all(), name
        else:
            assert torch.equal(got, tensor), name  # biases and normalisation stay exact
    assert (path / WEIGHTS_FILE).stat().st_size < 0.3 * (fp32 / WEIGHTS_FILE).stat().st_size
    x = torch.randn(2, 100, 43)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["avd"], model(x)["avd"], atol=0.05, rtol=0)


def test_truncated_weights_fail_clearly(bundle):
    weights = bundle / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(BundleError, match="safetensors"):
        load_bundle(bundle)


def test_missing_file_fails_clearly(bundle):
    (bundle / CONFIG_FILE).unlink()
    with pytest.raises(BundleError, match="cannot read bundle"):
        load_bundle(bundle)


@pytest.mark.parametrize("field", ["format_version", "architecture", "frontend", "class_names", "weights"])
def test_missing_field_fails_clearly(bundle, field):
    _edit_config(bundle, lambda c: c.pop(field))
    with pytest.raises(BundleError, match=field):
        read_bundle(bundle)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(format_version=99), "format_version"),
        (lambda c: c.update(weights="fp16"), "weights"),
        (lambda c: c.update(label_scale=[7, 1]), "label_scale"),
        (lambda c: c.update(class_names="angry"), "class_names"),
        (lambda c: c.update(surprise=1), "unknown field"),
        (lambda c: c["frontend"]["fbank"].pop("num_mel_bins"), "frontend"),
        (lambda c: c["frontend"].update(colour="red"), "frontend"),
        (lambda c: c.update(architecture="lstm"), "unknown architecture 'lstm'; known: gru, tcgru"),
        (lambda c: c["hyperparameters"].pop("hidden"), "hyperparameters"),
        (lambda c: c["hyperparameters"].update(hidden=64), "weight_hh_l0 is"),
        (lambda c: c.update(class_names=["a", "b"]), "n_classes 4 but 2 class names"),
        (lambda c: c.update(architecture="gru"), "unexpected time_conv.weight"),
    ],
)
def test_inconsistent_config_fails_clearly(bundle, change, message):
    _edit_config(bundle, change)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def test_wrong_shape_fails_clearly(tmp_path, model):
    from safetensors.torch import save_file

    path = save_bundle(tmp_path / "b", model, FrontEndConfig(), CLASSES)
    tensors = dict(model.state_dict())
    tensors["regression.weight"] = torch.zeros(4, 128)
    save_file(tensors, str(path / WEIGHTS_FILE))
    with pytest.raises(BundleError, match=r"regression.weight is torch.float32 \[4, 128\], expected torch.float32 \[3, 128\]"):
        load_bundle(path)


def test_int8_without_scale_fails_clearly(tmp_path, model):
    from safetensors.torch import load_file, save_file

    path = save_bundle(tmp_path / "q", model, FrontEndConfig(), CLASSES, int8=True)
    tensors = load_file(str(path / WEIGHTS_FILE))
    del tensors["gru.weight_ih_l0.int8_scale"]
    save_file(tensors, str(path / WEIGHTS_FILE))
    with pytest.raises(BundleError, match="gru.weight_ih_l0 needs a float32 scale"):
        load_bundle(path)
