"""An untrusted bundle reads and writes nothing outside itself, echoes no file content, and a graph
that does not compute what its weights say, or gives unusable outputs, is refused."""
from __future__ import annotations

import hashlib
import os
import shutil
import struct

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from emolive.engine.bundle import CONFIG_FILE, GRAPH_FILE, WEIGHTS_FILE, BundleError, read_bundle
from emolive.engine.features.config import FrontEndConfig
from emolive.engine.onnx_external import MESSAGES, TENSOR_DATA_LOCATION, TENSOR_EXTERNAL_DATA, uses_external_data
from emolive.plugins.student import TCGRUModel, load_student, save_bundle, write_graph
from emolive.plugins.student.graph import export_graph
from emolive.plugins.student.spec import WEIGHTS_DIGEST_KEY, student_shapes
from emolive.trainer.cli import main as trainer_main

CLASSES = ("angry", "happy", "neutral", "sad")
SECRET = b"TOPSECRET-0123456789"


@pytest.fixture
def bundle(tmp_path):
    torch.manual_seed(0)
    model = TCGRUModel(input_dim=43, n_classes=len(CLASSES))
    model.set_normalisation(torch.randn(43), torch.rand(43) + 0.1)
    return save_bundle(tmp_path / "b", model.eval(), FrontEndConfig(), CLASSES)


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET * 4)
    return path


def secret_echoes() -> list[str]:
    """What an error could show of the secret: its text, its first 8 bytes read as a number, or in hex (4
    bytes: the first alone, "54", was found in pytest's own folder names, pytest-540 to 549)."""
    return [SECRET[:8].decode(), str(struct.unpack("<Q", SECRET[:8])[0]), SECRET[:4].hex()]


@pytest.mark.parametrize("member", [CONFIG_FILE, WEIGHTS_FILE, GRAPH_FILE])
def test_a_linked_member_is_refused_and_its_target_never_shown(bundle, secret, member):
    (bundle / member).unlink()
    (bundle / member).symlink_to(secret)
    with pytest.raises(BundleError, match="symbolic link") as err:
        load_student(bundle)
    assert not any(echo in str(err.value) for echo in secret_echoes())


@pytest.mark.parametrize("member", ["splits.csv", "learned_clips.csv"])
def test_a_linked_split_table_is_refused_and_its_target_never_shown(bundle, secret, member, tmp_path, capsys):
    """`trainer evaluate` read a bundle's splits.csv and learned_clips.csv through links, and quoted the
    linked file's first line (/etc/passwd's) as the header that lacked the speaker column."""
    from tests.conftest import corpus_files

    (bundle / "splits.csv").write_text("speaker,split\nemodb/03,train\n")
    (bundle / member).unlink(missing_ok=True)
    (bundle / member).symlink_to(secret)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,speaker,emotion\n" + "".join(f"{p},s{i},sad\n" for i, p in
                                                         enumerate(corpus_files("emodb", limit=2))))
    assert trainer_main(["evaluate", "--model", str(bundle), "--data", str(manifest),
                         "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert f"{bundle / member}: a symbolic link; a bundle holds plain files only" in err
    assert not any(echo in err for echo in secret_echoes())


def test_export_into_a_bundle_never_writes_through_a_link(bundle, secret, capsys):
    (bundle / GRAPH_FILE).unlink()
    (bundle / GRAPH_FILE).symlink_to(secret)
    assert trainer_main(["export", "--into-bundle", str(bundle)]) == 2  # a user error: one line, exit 2
    assert "symbolic link" in capsys.readouterr().err
    assert secret.read_bytes() == SECRET * 4 and (bundle / GRAPH_FILE).is_symlink()


def test_export_replaces_the_graph_by_a_rename(bundle):
    before = os.stat(bundle / GRAPH_FILE).st_ino
    hard_link = bundle.parent / "kept.onnx"
    os.link(bundle / GRAPH_FILE, hard_link)  # a second name for the old file: a write through would change it
    old = hard_link.read_bytes()
    write_graph(bundle)
    assert os.stat(bundle / GRAPH_FILE).st_ino != before and hard_link.read_bytes() == old
    assert not [p for p in bundle.iterdir() if p.name.startswith(".")]  # no partial file left
    load_student(bundle)


@pytest.mark.parametrize("content", [SECRET * 4, b"\xff\xfe" + SECRET, b"{" + SECRET])
def test_parse_errors_do_not_echo_the_file(bundle, content):
    for member in (WEIGHTS_FILE, CONFIG_FILE):
        shutil.copy(bundle / member, bundle / f"{member}.bak")
        (bundle / member).write_bytes(content)
        with pytest.raises(BundleError) as err:
            read_bundle(bundle, student_shapes)
        assert not any(echo in str(err.value) for echo in secret_echoes()), str(err.value)
        shutil.move(bundle / f"{member}.bak", bundle / member)


def test_the_scanner_knows_onnx_field_numbers():
    """MESSAGES is onnx.proto's layout: each listed field has that number and that message type."""
    for message, fields in MESSAGES.items():
        descriptor = getattr(onnx, message).DESCRIPTOR
        for number, child in fields.items():
            field = descriptor.fields_by_number[number]
            assert field.message_type.name == child, (message, number)
    tensor = TensorProto.DESCRIPTOR
    assert tensor.fields_by_name["external_data"].number == TENSOR_EXTERNAL_DATA
    assert tensor.fields_by_name["data_location"].number == TENSOR_DATA_LOCATION
    # every message field that can hold a tensor or a graph is followed
    for message, fields in MESSAGES.items():
        descriptor = getattr(onnx, message).DESCRIPTOR
        holding = {f.number for f in descriptor.fields if f.message_type is not None and f.message_type.name in MESSAGES}
        assert holding <= set(fields), message


def external_tensor(name: str) -> TensorProto:
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [4], np.zeros(4, np.float32))
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "secret.txt"
    return tensor


def test_external_data_is_found_at_any_depth():
    inner = helper.make_graph([helper.make_node("Constant", [], ["c"], value=external_tensor("t"))], "then", [],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [4])])
    plain = helper.make_graph([helper.make_node("Constant", [], ["c"], value_float=1.0)], "else", [],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [])])
    node = helper.make_node("If", ["cond"], ["c"], then_branch=inner, else_branch=plain)
    outer = helper.make_graph([node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    assert uses_external_data(helper.make_model(outer).SerializeToString())
    clean = helper.make_graph([helper.make_node("If", ["cond"], ["c"], then_branch=plain, else_branch=plain)], "g",
                              [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    assert not uses_external_data(helper.make_model(clean).SerializeToString())


def test_a_graph_with_external_initializers_is_refused_before_a_session_reads_them(bundle, secret, monkeypatch):
    graph = onnx.load(str(bundle / GRAPH_FILE))
    onnx.external_data_helper.convert_model_to_external_data(graph, location="secret.txt", size_threshold=0)
    (bundle / GRAPH_FILE).write_bytes(graph.SerializeToString())
    monkeypatch.chdir(secret.parent)  # where onnxruntime would look for "secret.txt"
    import onnxruntime

    def no_session(*args, **kwargs):
        raise AssertionError("a session was created for a graph with external data")
    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    with pytest.raises(BundleError, match="external files"):
        load_student(bundle)


def hostile_graph(bundle, outputs: str) -> None:
    """Replace the bundle's graph by one with the student's signature, stamped with the bundle's
    weights digest, computing `outputs`: "nan", "negative" (class scores below 0) or "allocate"."""
    digest = read_bundle(bundle, student_shapes).weights_sha256
    feats = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "time", 43])
    lengths = helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", d])
            for n, d in (("avd", 3), ("class_probs", len(CLASSES)), ("embedding", 128))]
    inits = [helper.make_tensor(f"w_{n}", TensorProto.FLOAT, [43, d], np.full(43 * d, 0.01, np.float32))
             for n, d in (("avd", 3), ("class_probs", len(CLASSES)), ("embedding", 128))]
    inits.append(helper.make_tensor("scale", TensorProto.FLOAT, [], [float("nan") if outputs == "nan" else -1.0]))
    inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [1]))
    nodes = [helper.make_node("ReduceMean", ["features", "axes"], ["pooled"], keepdims=0)]
    nodes += [helper.make_node("MatMul", ["pooled", f"w_{n}"], [f"raw_{n}"]) for n in ("avd", "embedding")]
    nodes.append(helper.make_node("Mul", ["raw_avd", "scale"], ["avd"]) if outputs == "nan"
                 else helper.make_node("Identity", ["raw_avd"], ["avd"]))
    nodes.append(helper.make_node("Identity", ["raw_embedding"], ["embedding"]))
    nodes.append(helper.make_node("MatMul", ["pooled", "w_class_probs"], ["raw_class"]))
    if outputs == "allocate":  # a shape taken from the input: 1e12 floats at run time
        inits.append(helper.make_tensor("huge", TensorProto.INT64, [2], [1_000_000, 1_000_000]))
        nodes += [helper.make_node("ConstantOfShape", ["huge"], ["big"]),
                  helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
                  helper.make_node("Add", ["raw_class", "total"], ["class_probs"])]
    else:
        nodes.append(helper.make_node("Mul", ["raw_class", "scale"], ["class_probs"]))
    model = helper.make_model(helper.make_graph(nodes, "hostile", [feats, lengths], outs, inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, {WEIGHTS_DIGEST_KEY: digest})
    (bundle / GRAPH_FILE).write_bytes(model.SerializeToString())


@pytest.mark.parametrize(("outputs", "message"), [("nan", "does not compute what model.safetensors holds \\(differs "
                                                  "by nan"), ("negative", "does not compute what model.safetensors"),
                                                  ("allocate", "failed to run")])
def test_unusable_outputs_and_run_time_failures_are_one_line_bundle_errors(bundle, outputs, message):
    """A hostile graph's NaN or negative probabilities fail the load's check on a fixed input (the
    engine checks every prediction after that: tests/test_plugin_contract.py)."""
    hostile_graph(bundle, outputs)
    with pytest.raises(BundleError, match=message) as err:
        load_student(bundle)
    assert "\n" not in str(err.value)


def test_a_graph_made_from_other_weights_is_refused(bundle, tmp_path):
    torch.manual_seed(1)
    other = TCGRUModel(input_dim=43, n_classes=len(CLASSES)).eval()
    export_graph(other, bundle / GRAPH_FILE, read_bundle(bundle, student_shapes).weights_sha256)  # an honest stamp
    with pytest.raises(BundleError, match="does not compute what model.safetensors holds"):
        load_student(bundle)
    write_graph(bundle)
    load_student(bundle)


def test_control_characters_from_a_bundle_never_reach_a_terminal(bundle):
    import json

    from emolive.gui.provenance import provenance_text
    from emolive.trainer.report.blocks import Code, Table, Text
    from emolive.trainer.report.markdown import render_markdown

    config = json.loads((bundle / CONFIG_FILE).read_text())
    (bundle / CONFIG_FILE).write_text(json.dumps({**config, "class_names": ["angry\x1b[2J", "b", "c", "d"]}))
    with pytest.raises(BundleError, match="printable"):
        read_bundle(bundle, student_shapes)
    hostile = "\x1b]0;owned\x07"
    (bundle / CONFIG_FILE).write_text(json.dumps({**config, "training": {"licence": hostile, "best_epoch": hostile},
                                                  "metrics": {hostile: hostile}}))
    meta = read_bundle(bundle, student_shapes).meta
    text = provenance_text(hostile, meta)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]0;owned" in text
    report = render_markdown([Text(hostile), Table([hostile], [[hostile]]), Code(f"line 1\n{hostile}")])
    assert "\x1b" not in report and "line 1\n\\x1b" in report


def test_weights_changed_after_writing_are_refused_as_damage_not_blamed_on_the_graph(bundle):
    """Flipped bits in int8 weights still parse as weights: the graph, stamped with the original's hash,
    was called stale, and `trainer export --into-bundle` (the advice) made the damage the bundle's
    graph. config.json now records the weights' SHA-256; a bundle from before the field still loads."""
    import json

    config = json.loads((bundle / CONFIG_FILE).read_text())
    assert config["weights_sha256"] == hashlib.sha256((bundle / WEIGHTS_FILE).read_bytes()).hexdigest()
    data = bytearray((bundle / WEIGHTS_FILE).read_bytes())
    data[-100] ^= 0x40
    (bundle / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model.safetensors: its sha256 is not the one config.json records"):
        load_student(bundle)
    del config["weights_sha256"]  # as bundles were written before: the graph's stamp is all there is
    (bundle / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"model.onnx was not made from this model.safetensors; if these are the "):
        load_student(bundle)
    config["weights_sha256"] = "not a digest"
    (bundle / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"'weights_sha256' must be a SHA-256 in 64 hex digits"):
        load_student(bundle)


@pytest.mark.parametrize("target", ["missing.onnx", "elsewhere"])
def test_a_teachers_linked_graph_is_refused_even_when_its_target_is_gone(tmp_path, target):
    """A teacher whose model.onnx was a dangling link loaded without a word on the torch path (about 800 MB
    instead of 250), where a student's, or a teacher's link to a real file, is refused."""
    from emolive.engine.plugin import load_model
    from tests.conftest import REPO

    teacher = tmp_path / "teacher"
    shutil.copytree(REPO / "plugins" / "teacher" / "default", teacher)
    (tmp_path / "elsewhere").write_bytes((teacher / GRAPH_FILE).read_bytes())
    (teacher / GRAPH_FILE).unlink()
    (teacher / GRAPH_FILE).symlink_to(tmp_path / target)
    with pytest.raises(BundleError, match=f"{teacher / GRAPH_FILE}: a symbolic link"):
        load_model(str(teacher))
