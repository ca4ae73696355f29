"""Fuzzing untrusted bundles: any config.json or safetensors header gives a BundleError or a valid model.

Property: loading never raises anything else, and never takes long or allocates much, because every
field is checked before anything is built from it. Inputs start from a real bundle and mutate one
part (a config field, a front-end field, a hyperparameter, the header's JSON or its length prefix),
so the fuzzer spends its time near the valid format, where the checks are subtle.
"""
from __future__ import annotations

import json
import shutil
import struct
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emolive.engine.bundle import CONFIG_FILE, WEIGHTS_FILE, BundleError
from emolive.engine.features.config import FrontEndConfig
from emolive.plugins.student import TCGRUModel, load_student, save_bundle
from emolive.plugins.student.plugin import StudentPlugin

MAX_SECONDS = 5.0  # a valid student loads in well under a second; a check that read or built too much would not

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                         st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
# Numbers near the edges of every bound: zero, negatives, huge, non-finite, off by one.
edgy_numbers = st.one_of(st.sampled_from([0, -1, 1, 2, 3, 43, 127, 128, 400, 512, 4097, 10**6, 2**63, 0.5, -0.0,
                                          float("nan"), float("inf"), float("-inf"), 1e308, "1", True]),
                         st.integers(-10**6, 10**6), st.floats())


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    torch.manual_seed(0)
    model = TCGRUModel(input_dim=43, n_classes=2, hidden=8, embedding_dim=4, gain_dims=40)
    return save_bundle(tmp_path_factory.mktemp("fuzz") / "valid", model, FrontEndConfig(), ("a", "b"))


def _load_within_bounds(path) -> None:
    start = time.perf_counter()
    try:
        plugin = load_student(path)
    except BundleError as err:
        assert "\n" not in str(err)  # one line, as the CLI prints it
    else:
        assert isinstance(plugin, StudentPlugin)
    assert time.perf_counter() - start < MAX_SECONDS


def _mutated_copy(valid, tmp_path_factory):
    path = tmp_path_factory.mktemp("case") / "b"
    shutil.copytree(valid, path)
    return path


def _set(config: dict, where: tuple[str, ...], value) -> None:
    node = config
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value


def _paths(config: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in config.items():
        out.append(prefix + (key,))
        if isinstance(value, dict):
            out += _paths(value, prefix + (key,))
    return out


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.data())
def test_any_config_field_value_is_an_error_or_a_model(valid, tmp_path_factory, data):
    path = _mutated_copy(valid, tmp_path_factory)
    config = json.loads((path / CONFIG_FILE).read_text())
    where = data.draw(st.sampled_from(sorted(_paths(config))))
    _set(config, where, data.draw(st.one_of(edgy_numbers, json_values)))
    (path / CONFIG_FILE).write_text(json.dumps(config))
    _load_within_bounds(path)


@SETTINGS
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      st.integers(1, 5000).map(lambda n: "[" * n)))
def test_any_config_text_is_an_error_or_a_model(valid, tmp_path_factory, text):
    path = _mutated_copy(valid, tmp_path_factory)
    (path / CONFIG_FILE).write_text(text)
    _load_within_bounds(path)


@SETTINGS
@given(data=st.data())
def test_any_safetensors_header_is_an_error_or_a_model(valid, tmp_path_factory, data):
    path = _mutated_copy(valid, tmp_path_factory)
    blob = (path / WEIGHTS_FILE).read_bytes()
    (length,) = struct.unpack_from("<Q", blob)
    header, body = json.loads(blob[8:8 + length]), blob[8 + length:]
    name = data.draw(st.sampled_from(sorted(header)))
    choice = data.draw(st.sampled_from(["entry", "field", "drop", "length", "raw"]))
    if choice == "entry":
        header[name] = data.draw(json_values)
    elif choice == "field" and isinstance(header[name], dict):
        field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        header[name][field] = data.draw(st.one_of(json_values, st.lists(edgy_numbers, max_size=3),
                                                  st.sampled_from(["F16", "I64", "BF16", "U8", "F64"])))
    elif choice == "drop":
        header.pop(name)
    raw = json.dumps(header).encode()
    if choice == "raw":
        raw = data.draw(st.binary(max_size=300))
    prefix = struct.pack("<Q", data.draw(st.sampled_from([0, 7, len(raw) + 1, 2**63, 2**64 - 1]))
                         if choice == "length" else len(raw))
    (path / WEIGHTS_FILE).write_bytes(prefix + raw + body)
    _load_within_bounds(path)
