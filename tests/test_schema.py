"""The payload schema: builders produce valid JSON-ready dicts; validation rejects what breaks the contract."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emolive.engine.schema import (SCHEMA_VERSION, SchemaError, estimate_payload, status_payload, to_json, topic,
                           validate_estimate, validate_status)


def make_estimate(**overrides):
    fields = dict(seq=np.int64(3), stream="mic", start=1.5, end=np.float32(4.5), wall_start=1.7e9,
                  wall_end=1.7e9 + 3, activation=np.float32(4.2), valence=3.9, dominance=5.0,
                  classes={"neutral": np.float32(0.5), "happy": 0.25, "angry": 0.25}, speech=np.bool_(True),
                  voiced_ratio=0.6, model="student-gru", latency_ms=7.5)
    return estimate_payload(**{**fields, **overrides})


def test_estimate_builder_gives_plain_json_types_that_validate():
    payload = make_estimate()
    validate_estimate(payload)
    assert payload["schema"] == SCHEMA_VERSION
    assert type(payload["seq"]) is int and type(payload["speech"]) is bool
    assert type(payload["end"]) is float and type(payload["classes"]["neutral"]) is float
    assert json.loads(to_json(payload)) == payload
    assert topic("avd", payload) == "avd.mic"


@pytest.mark.parametrize("overrides, fragment", [
    ({"activation": 7.5}, "activation"),
    ({"valence": float("nan")}, "valence"),
    ({"end": 1.0}, "end before it starts"),
    ({"seq": -1}, "seq"),
    ({"stream": "my stream"}, "stream"),
    ({"classes": {"a": 0.5, "b": 0.2}}, "sum to 1"),
    ({"voiced_ratio": 1.5}, "voiced_ratio"),
    ({"model": ""}, "model"),
])
def test_validate_estimate_rejects_values_off_the_schema(overrides, fragment):
    with pytest.raises(SchemaError, match=fragment):
        validate_estimate(make_estimate(**overrides))


def test_validate_estimate_rejects_missing_unexpected_and_mistyped_fields():
    payload = make_estimate()
    with pytest.raises(SchemaError, match="missing \\['latency_ms'\\]"):
        validate_estimate({k: v for k, v in payload.items() if k != "latency_ms"})
    with pytest.raises(SchemaError, match="unexpected \\['extra'\\]"):
        validate_estimate({**payload, "extra": 1})
    with pytest.raises(SchemaError, match="speech"):
        validate_estimate({**payload, "speech": 1})
    with pytest.raises(SchemaError, match="schema"):
        validate_estimate({**payload, "schema": 2})
    validate_estimate({**payload, "classes": {}})  # a model without classes is valid


def test_status_builder_keeps_extras_and_validates():
    status = status_payload(stream="mic", dropped_blocks=np.int64(2), skipped_windows=0, lag_s=np.float64(0.1),
                            wall=1.7e9, source="microphone 'USB'")
    validate_status(status)
    assert status["source"] == "microphone 'USB'" and type(status["dropped_blocks"]) is int
    with pytest.raises(SchemaError, match="lag_s"):
        validate_status({k: v for k, v in status.items() if k != "lag_s"})
    with pytest.raises(SchemaError, match="counters"):
        validate_status({**status, "skipped_windows": -1})


def test_to_json_refuses_nan():
    with pytest.raises(SchemaError, match="not valid JSON"):
        to_json({"x": float("inf")})
