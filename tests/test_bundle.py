"""Model bundles: exact fp32 round trip, int8 storage, and clear errors on damaged or hostile bundles."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from emolive.engine.bundle import CONFIG_FILE, GRAPH_FILE, WEIGHTS_FILE, BundleError, read_bundle
from emolive.engine.features.config import FrontEndConfig
from emolive.plugins.student import ARCHITECTURES, TCGRUModel, load_bundle, load_student, save_bundle, write_graph
from emolive.plugins.student.spec import network_shapes, student_shapes

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



def weights_by_hand(path, tensors: dict) -> None:
    """`tensors` as the bundle's weights, written as another program would write them, with config.json's
    record of their SHA-256 to match (else the load stops at the damaged-copy check)."""
    import hashlib

    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in tensors.items()},
              str(path / WEIGHTS_FILE))
    digest = hashlib.sha256((path / WEIGHTS_FILE).read_bytes()).hexdigest()
    _edit_config(path, lambda config: config.update(weights_sha256=digest))


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
            # q * step is within step / 2 of the weight by construction; + 1e-7 for rounding the product
            # in float32 (half an ulp of |w| < 1 is <= 6e-8): IEEE-754 arithmetic, the same on every CPU
            assert ((got - tensor).abs().flatten(1).amax(1) <= step / 2 + 1e-7).all(), name
        else:
            assert torch.equal(got, tensor), name  # biases and normalisation stay exact
    assert (path / WEIGHTS_FILE).stat().st_size < 0.3 * (fp32 / WEIGHTS_FILE).stat().st_size
    x = torch.randn(2, 100, 43)
    with torch.no_grad():
        # the difference is the quantisation (weights moved by <= 0.4 % of each channel's largest, the
        # same on every machine), ~1e-2 on the 1-7 scale; build-to-build rounding adds ~1e-6
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
        read_bundle(bundle, student_shapes)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(format_version=99), "format_version"),
        (lambda c: c.update(weights="fp16"), "weights"),
        (lambda c: c.update(label_scale=[7, 1]), "label_scale"),
        # any architecture: the runner clips to the schema's SCALE, so another scale would be cut, not mapped
        (lambda c: c.update(label_scale=[0, 10]), r"label_scale \[0, 10\] is not emolive's \[1.0, 7.0\]"),
        (lambda c: c.update(class_names="angry"), "class_names"),
        (lambda c: c.update(surprise=1), "unknown field"),
        (lambda c: c["frontend"]["fbank"].pop("num_mel_bins"), "frontend"),
        (lambda c: c["frontend"].update(colour="red"), "frontend"),
        (lambda c: c.update(architecture="lstm"), "unknown architecture 'lstm'; known: gru, tcgru"),
        (lambda c: c["hyperparameters"].pop("hidden"), "hyperparameters"),
        (lambda c: c["hyperparameters"].update(hidden=64), "weight_hh_l0 is"),
        (lambda c: c.update(class_names=["a", "b"]), "n_classes 4 but 2 class names"),
        (lambda c: c.update(architecture="gru"), "unexpected time_conv.weight"),
        # a model trained on normalised features must not load without its normaliser: it loaded, and
        # every estimate was made on raw features (activation 6.36 against 5.55 on one file)
        (lambda c: c.update(training={"config": {"stream_norm": True}}),
         "training.config.stream_norm is true but the field stream_normalisation is missing"),
    ],
)
def test_inconsistent_config_fails_clearly(bundle, change, message):
    _edit_config(bundle, change)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def _normaliser(edit):
    def change(config):
        edit(config["stream_normalisation"])
    return change


@pytest.mark.parametrize("edit, message", [
    # 1e308 overflowed the running sums: every window then had the same estimate, and the bundle loaded
    (lambda n: n["prior_mean"].__setitem__(0, 1e308), r"prior_mean must be numbers within ±10000"),
    (lambda n: n["prior_var"].__setitem__(0, 1e308), r"prior_var must be positive numbers up to 1e\+08"),
    (lambda n: n.update(columns=True), r"columns must be an integer in \[1, 4096\], got True"),
    (lambda n: n.update(voicing_column=True), r"voicing_column must be a non-negative integer, got True"),
    (lambda n: n.update(voicing_threshold=-1e308), r"voicing_threshold must be a voicing probability in \[0, 1\]"),
    (lambda n: n.update(frame_rate=100), r"stream_normalisation.frame_rate 100 is not the front end's 50 frames"),
])
def test_a_normaliser_no_front_end_could_have_fitted_is_refused(tmp_path, edit, message):
    """Each of these loaded, and moved the estimates by 0.15-2.8 on the 1-7 scale or made them constant."""
    import shutil

    from emolive.plugins.student import DEFAULT_BUNDLE

    bundle = tmp_path / "b"
    shutil.copytree(DEFAULT_BUNDLE, bundle)
    load_bundle(bundle)  # the shipped one loads
    _edit_config(bundle, _normaliser(edit))
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


@pytest.mark.parametrize("std", [0.0, -1.0, 1e-30])
def test_a_feature_std_below_trainings_floor_is_refused(tmp_path, model, std):
    """A 0 gave "model.onnx does not compute what model.safetensors holds (differs by nan)", which
    exporting again never fixed; a negative or 1e-30 std loaded and moved every estimate."""
    path = save_bundle(tmp_path / "b", model, FrontEndConfig(), CLASSES)
    tensors = dict(model.state_dict())
    tensors["feature_std"] = tensors["feature_std"].clone()
    tensors["feature_std"][0] = std
    weights_by_hand(path, tensors)  # a bundle written by hand, or by another program
    refusal = rf"feature_std holds {std:g}; a feature's training std is at least 1e-05"
    with pytest.raises(BundleError, match=refusal):
        load_bundle(path)
    model.load_state_dict(tensors)
    with pytest.raises(BundleError, match=refusal):  # and nothing writes one
        save_bundle(tmp_path / "again", model, FrontEndConfig(), CLASSES)


def test_wrong_shape_fails_clearly(tmp_path, model):
    from safetensors.torch import save_file

    path = save_bundle(tmp_path / "b", model, FrontEndConfig(), CLASSES)
    tensors = dict(model.state_dict())
    tensors["regression.weight"] = torch.zeros(4, 128)
    save_file(tensors, str(path / WEIGHTS_FILE))
    with pytest.raises(BundleError, match=r"regression.weight is float32 \[4, 128\], expected float32 \[3, 128\]"):
        load_bundle(path)


def test_int8_without_scale_fails_clearly(tmp_path, model):
    from safetensors.torch import load_file, save_file

    path = save_bundle(tmp_path / "q", model, FrontEndConfig(), CLASSES, int8=True)
    tensors = load_file(str(path / WEIGHTS_FILE))
    del tensors["gru.weight_ih_l0.int8_scale"]
    save_file(tensors, str(path / WEIGHTS_FILE))
    with pytest.raises(BundleError, match="missing gru.weight_ih_l0.int8_scale"):  # from the header, before reading
        load_bundle(path)


def test_an_int8_scale_that_overflows_the_weights_is_refused_as_they_are(tmp_path, model, recwarn):
    """The finiteness check read the stored scales, not the weights they make: a scale of 3e38 (finite)
    loaded, `trainer export` wrote a graph with numpy's warnings, and every file then failed with "gave
    NaN or infinite outputs"."""
    from safetensors.numpy import load_file

    path = save_bundle(tmp_path / "q", model, FrontEndConfig(), CLASSES, int8=True)
    tensors = load_file(str(path / WEIGHTS_FILE))
    tensors["gru.weight_ih_l0.int8_scale"] = np.full_like(tensors["gru.weight_ih_l0.int8_scale"], 3e38)
    weights_by_hand(path, tensors)
    with pytest.raises(BundleError, match="tensor gru.weight_ih_l0 holds NaN or infinite values"):
        load_bundle(path)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_weights_whose_outputs_overflow_float32_are_refused_as_damaged_not_sent_to_export(tmp_path):
    """A classifier scale of 1e36 keeps every weight finite, but float32 logits overflow: the graph gave
    NaN probabilities, the load's agreement check passed over the NaN (Python's max), and every file
    failed; where it did not, its advice (export again) gave the same graph. Weights beyond any trained
    network's are refused as damage, by export and load alike."""
    import shutil

    import emolive
    from safetensors.numpy import load_file

    from emolive.plugins.student import DEFAULT_BUNDLE
    from emolive.trainer.cli import main as trainer_main

    path = shutil.copytree(DEFAULT_BUNDLE, tmp_path / "b")
    tensors = load_file(str(path / WEIGHTS_FILE))
    tensors["classifier.weight.int8_scale"] = np.full_like(tensors["classifier.weight.int8_scale"], 1e36)
    weights_by_hand(path, tensors)
    assert trainer_main(["export", "--into-bundle", str(path)]) == 2
    with pytest.raises(BundleError, match=r"tensor classifier.weight holds 1.\d+e\+38, beyond any trained weight"):
        emolive.load_model(path)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("hp", [dict(input_dim=43, n_classes=4, hidden=16, layers=2, embedding_dim=8, gain_dims=40),
                                dict(input_dim=7, n_classes=0, hidden=5, layers=3, embedding_dim=6, gain_dims=0)])
def test_spec_shapes_are_the_torch_modules_state_dict(arch, hp):
    """The light engine checks bundles against spec.py's arithmetic; it must be the modules' real shapes."""
    module = ARCHITECTURES[arch](**hp)
    assert network_shapes(arch, hp, "x") == {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _replace_config(path, change):
    config = json.loads((path / CONFIG_FILE).read_text())
    change(config)
    (path / CONFIG_FILE).write_text(json.dumps(config))  # NaN and Infinity are written as JSON allows


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["hyperparameters"].update(hidden=12000), r"hidden must be an integer in \[1, 4096\]"),
        (lambda c: c["hyperparameters"].update(hidden=1000), "weight_hh_l0 is float32"),  # in range: the header decides
        (lambda c: c["hyperparameters"].update(hidden=4000), "more than 64,000,000"),
        (lambda c: c["hyperparameters"].update(layers=-1), "layers must be an integer"),
        (lambda c: c["hyperparameters"].update(hidden="128"), "hidden must be an integer"),
        (lambda c: c["hyperparameters"].update(hidden=True), "hidden must be an integer"),
        (lambda c: c["hyperparameters"].update(gain_dims=44), "gain_dims 44 is more than input_dim 43"),
        (lambda c: c.update(architecture=["tcgru"]), "architecture"),
        (lambda c: c["frontend"].update(frame_shift=0), "frame_shift must be an integer"),
        (lambda c: c["frontend"].update(frame_length="400"), "frame_length must be an integer"),
        (lambda c: c["frontend"].update(frame_length=-400), "frame_length must be an integer"),
        (lambda c: c["frontend"]["fbank"].update(fft_size=100), "power of two"),
        (lambda c: c["frontend"]["fbank"].update(fft_size=256), "fft_size 256 is shorter than frame_length 400"),
        (lambda c: c["frontend"]["pitch"].update(min_f0=0), "min_f0 must be a finite number"),
        (lambda c: c["frontend"]["pitch"].update(max_f0=40.0), "max_f0 40.0 must be above pitch.min_f0"),
        (lambda c: c["frontend"]["pitch"].update(voicing_threshold=math.nan), "voicing_threshold must be a finite"),
        (lambda c: c["frontend"]["pitch"].update(silence_threshold=math.inf), "silence_threshold must be a finite"),
        (lambda c: c["frontend"].update(fbank=[]), "FbankConfig must be a JSON object"),
        (lambda c: c.update(label_scale=[1, math.nan]), "label_scale"),
        (lambda c: c.update(class_names=["a", "b", "c", ""]), "class_names"),
    ],
)
def test_hostile_config_is_refused_before_anything_is_built(bundle, change, message):
    _replace_config(bundle, change)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)
    with pytest.raises(BundleError, match=message):
        load_student(bundle)


def test_a_fifo_is_refused_without_hanging(bundle):
    (bundle / WEIGHTS_FILE).unlink()
    os.mkfifo(bundle / WEIGHTS_FILE)  # no writer: a blocking open would wait for ever
    with pytest.raises(BundleError, match="not a regular file"):
        load_student(bundle)
    (bundle / CONFIG_FILE).unlink()
    os.mkfifo(bundle / CONFIG_FILE)
    with pytest.raises(BundleError, match="not a regular file"):
        load_student(bundle)


@pytest.mark.parametrize("member", [CONFIG_FILE, WEIGHTS_FILE, GRAPH_FILE])
def test_a_member_that_is_a_folder_is_one_bundle_error(bundle, member):
    """The descriptor is checked before anything reads from it: a folder is refused by name, not an
    IsADirectoryError about a file descriptor number."""
    (bundle / member).unlink()
    (bundle / member).mkdir()
    with pytest.raises(BundleError, match=f"{member}: not a regular file"):
        load_student(bundle)


def test_a_file_that_grows_while_it_is_read_is_read_to_its_bound(tmp_path, monkeypatch):
    """read_bounded reads the size fstat gave and one byte more; a file that grew after fstat is read
    on in pieces, to its end within the limit, and refused past it."""
    from emolive.engine import files as files_module
    from emolive.engine.files import RefusedFile, read_bounded

    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 40)  # 10 kB
    real_fstat = os.fstat

    def stale_fstat(fd):  # the size the file had before it grew to 10 kB
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 100, *info[7:]))

    monkeypatch.setattr(files_module.os, "fstat", stale_fstat)
    monkeypatch.setattr(files_module, "GROWTH_READ", 1000)
    assert read_bounded(path, 20_000) == path.read_bytes()
    with pytest.raises(RefusedFile, match="grew past 5000 bytes"):
        read_bounded(path, 5000)


def test_json_files_hold_null_where_a_score_is_not_measurable(tmp_path, model):
    """A NaN score (BAVED's valence: all its labels equal) is `null`: JavaScript's JSON.parse, and
    Python's with NaN refused, read config.json."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    metrics = {"test": {"ccc": {"activation": 0.5, "valence": float("nan"), "dominance": np.float32("nan")},
                        "uar": np.float64(0.25)}}
    path = save_bundle(tmp_path / "b", model, FrontEndConfig(), CLASSES, metrics=metrics)
    written = json.loads((path / CONFIG_FILE).read_text(), parse_constant=refuse)["metrics"]
    assert written == {"test": {"ccc": {"activation": 0.5, "valence": None, "dominance": None}, "uar": 0.25}}
    assert load_bundle(path)[1].metrics == written


def test_weights_pointing_at_a_device_are_refused_unread(bundle):
    (bundle / WEIGHTS_FILE).unlink()
    (bundle / WEIGHTS_FILE).symlink_to("/dev/zero")
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(bundle)


def test_a_huge_weights_file_is_refused_unread(bundle):
    with open(bundle / WEIGHTS_FILE, "r+b") as f:
        f.truncate(64 << 30)  # sparse: 64 GiB that take no disk, and would take the memory if read
    with pytest.raises(BundleError, match="more than the"):
        load_bundle(bundle)


def test_a_header_that_lies_about_the_data_size_is_refused(bundle):
    with open(bundle / WEIGHTS_FILE, "ab") as f:
        f.write(b"\0" * 64)
    with pytest.raises(BundleError, match="the header describes"):
        load_bundle(bundle)


def test_non_finite_weights_are_refused(tmp_path, model):

    path = save_bundle(tmp_path / "b", model, FrontEndConfig(), CLASSES)
    tensors = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    tensors["regression.bias"][1] = np.nan
    weights_by_hand(path, tensors)
    with pytest.raises(BundleError, match="regression.bias holds NaN"):
        load_bundle(path)


def test_save_bundle_writes_a_graph_the_light_engine_runs(bundle, model):
    assert (bundle / GRAPH_FILE).is_file()
    plugin = load_student(bundle)
    x = np.random.default_rng(0).standard_normal((80, 43)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)[None])
    got = plugin.predict(x, np.zeros(0, np.float32))
    # float32 in both runtimes, values of order 1: a few ulp per op, far below 1e-4
    np.testing.assert_allclose(got.avd, ref["avd"][0].numpy(), atol=1e-4, rtol=0)


def test_a_stale_or_missing_graph_is_refused_and_the_export_command_fixes_it(bundle, model):
    tensors = {k: v.numpy() for k, v in model.state_dict().items()}
    tensors["regression.bias"] = tensors["regression.bias"] + 1

    weights_by_hand(bundle, tensors)  # new weights, old graph
    with pytest.raises(BundleError, match="model.onnx was not made from this model.safetensors; if these are the "
                                          "weights you want, write it with `trainer export --into-bundle"):
        load_student(bundle)
    write_graph(bundle)
    assert load_student(bundle).meta.class_names == CLASSES
    # a graph for other runtimes holds these very weights, but no digest: "not made from" them was false
    from emolive.trainer.cli import main as trainer_main

    assert trainer_main(["export", "--model", str(bundle), "--out", str(bundle.parent / "standalone.onnx")]) == 0
    (bundle / GRAPH_FILE).write_bytes((bundle.parent / "standalone.onnx").read_bytes())
    with pytest.raises(BundleError, match="model.onnx records no digest of the weights it holds"):
        load_student(bundle)
    (bundle / GRAPH_FILE).write_bytes(b"not a graph")
    with pytest.raises(BundleError, match="model.onnx is not a graph onnxruntime can run"):
        load_student(bundle)
    (bundle / GRAPH_FILE).unlink()  # it said "a bundle is a directory with config.json and model.safetensors"
    with pytest.raises(BundleError, match="model.onnx is missing; write it from the bundle's weights with "
                                          "`trainer export --into-bundle"):
        load_student(bundle)


# atomic writes -----------------------------------------------------------------------------------

def test_every_bundle_file_gets_the_umask_mode(tmp_path, model):
    """safetensors' save_file creates 0600 files whatever the umask; the bundle's weights must not."""
    old = os.umask(0o022)
    try:
        path = save_bundle(tmp_path / "b", model, FrontEndConfig(), CLASSES)
    finally:
        os.umask(old)
    modes = {f.name: f.stat().st_mode & 0o777 for f in path.iterdir()}
    assert modes == {WEIGHTS_FILE: 0o644, CONFIG_FILE: 0o644, GRAPH_FILE: 0o644}
    assert path.stat().st_mode & 0o777 == 0o755


def test_a_write_interrupted_after_the_weights_leaves_the_old_bundle(bundle, model):
    before = {f.name: f.read_bytes() for f in bundle.iterdir()}

    def fail(directory):
        assert (directory / WEIGHTS_FILE).is_file() and (directory / GRAPH_FILE).is_file()
        raise KeyboardInterrupt  # e.g. Ctrl-C after the weights and graph are on disk

    torch.manual_seed(1)
    other = TCGRUModel(input_dim=43, n_classes=2)
    with pytest.raises(KeyboardInterrupt):
        save_bundle(bundle, other, FrontEndConfig(), ("x", "y"), training={"run": 2}, finish=fail)
    assert {f.name: f.read_bytes() for f in bundle.iterdir()} == before
    assert load_bundle(bundle)[1].class_names == CLASSES
    assert sorted(p.name for p in bundle.parent.iterdir()) == [bundle.name]  # no partial directory left


def test_a_rewrite_replaces_every_file_of_the_old_bundle_and_refuses_a_bundle_folder_holding_others(bundle, model):
    """A bundle file of the old run (its training history) does not outlive the rewrite; a file a bundle
    does not hold (the user's notes) is never deleted with it: the rewrite is refused, naming it."""
    (bundle / "history.csv").write_text("epoch\n0\n")  # the old run's, which the new bundle does not write
    save_bundle(bundle, TCGRUModel(input_dim=43, n_classes=2), FrontEndConfig(), ("x", "y"))
    assert load_bundle(bundle)[1].class_names == ("x", "y") and not (bundle / "history.csv").exists()
    assert sorted(p.name for p in bundle.parent.iterdir()) == [bundle.name]
    (bundle / "notes.txt").write_text("from the old run")
    with pytest.raises(BundleError, match=r"holds 1 file\(s\) a bundle does not \(notes.txt\)"):
        save_bundle(bundle, model, FrontEndConfig(), CLASSES)
    assert (bundle / "notes.txt").is_file() and load_bundle(bundle)[1].class_names == ("x", "y")


def test_a_bundle_written_into_the_current_folder_keeps_that_folder(bundle, model, monkeypatch):
    """`trainer train --out .`: the folder the user's shell is in stays that folder (renamed aside and
    removed, it left the shell in a deleted folder), and the old run's files go as in any rewrite."""
    (bundle / "history.csv").write_text("epoch\n0\n")
    inode = bundle.stat().st_ino
    monkeypatch.chdir(bundle)
    save_bundle(Path("."), TCGRUModel(input_dim=43, n_classes=2), FrontEndConfig(), ("x", "y"))
    assert bundle.stat().st_ino == inode and Path.cwd().samefile(bundle)
    assert load_bundle(Path("."))[1].class_names == ("x", "y") and not Path("history.csv").exists()
    assert sorted(p.name for p in bundle.parent.iterdir()) == [bundle.name]  # no partial folder left beside it


def test_a_directory_that_is_not_a_bundle_is_never_replaced(tmp_path, model):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(BundleError, match="not a bundle"):
        save_bundle(tmp_path / "mine", model, FrontEndConfig(), CLASSES)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


KILLED_WRITER = """
import sys, time, torch
from emolive.engine.features.config import FrontEndConfig
from emolive.plugins.student import TCGRUModel, save_bundle

def hold(directory):
    print("written", flush=True)
    time.sleep(60)

save_bundle(sys.argv[1], TCGRUModel(input_dim=43, n_classes=2), FrontEndConfig(), ("x", "y"), finish=hold)
"""


def test_a_killed_writer_leaves_the_old_bundle_loadable(bundle):
    """SIGKILL runs no cleanup: the old bundle must still be whole, only a hidden partial dir beside it."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(bundle)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"  # weights, config and graph of the new one are on disk
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert load_bundle(bundle)[1].class_names == CLASSES
    assert load_student(bundle).meta.class_names == CLASSES  # the ONNX graph matches the weights
    leftovers = [p.name for p in bundle.parent.iterdir() if p != bundle]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{bundle.name}.partial-")


def test_a_bundle_folder_is_named_as_given_not_as_the_installed_model_of_that_name(tmp_path, monkeypatch):
    """`--model ./student` ran the local folder but every output's `model` said `student`, the installed
    model's name: Path() dropped the "./", and the two runs' results could not be told apart."""
    import shutil

    import emolive
    from emolive.plugins.student import DEFAULT_BUNDLE

    shutil.copytree(DEFAULT_BUNDLE, tmp_path / "student")
    monkeypatch.chdir(tmp_path)
    assert emolive.load_model("./student").name == "./student"
    assert emolive.load_model("student").name == "student"
    assert emolive.load_model(tmp_path / "student").name == str(tmp_path / "student")
