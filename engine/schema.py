"""The messages emolive publishes: one estimate per hop, and a status about once a second.

Every sink (ZeroMQ, JSON lines, CSV, LSL) sends these same dicts, so a program written
against one transport reads the others. `SCHEMA_VERSION` changes whenever a field changes
meaning or disappears; adding a field does not change it, so readers must ignore unknown keys.

Estimate (topic `avd.<stream>`):
    schema        int    SCHEMA_VERSION
    seq           int    0, 1, 2 … per stream; a gap means estimates were lost in transport
    stream        str    stream id: letters, digits, '_' and '-'
    start, end    float  the window's span in stream seconds (sample count / 16 kHz)
    wall_start, wall_end float  unix times at which those samples were captured
    activation, valence, dominance float  on the 1–7 scale
    classes       {str: float}  class probabilities (sum to 1; empty for models without classes)
    speech        bool   False when the window is mostly not speech: the estimate is flagged, not hidden
    voiced_ratio  float  fraction of the window's frames that are voiced, 0–1
    model         str    model id
    latency_ms    float  from the window's last sample being available to the estimate being ready

Turn (topic `turn.<stream>`): the estimate's fields over one whole span, plus
    kind          str    "turn": a speech turn, sent when it ends (start/end are its span, seq counts turns);
                         "stream": the whole stream, sent once at its end where asked for (`emolive score`,
                         `emolive.analyze`)

Status (topic `status.<stream>`): schema, stream, dropped_blocks (audio lost at the source),
skipped_windows (windows not evaluated because the model fell behind), lag_s (how far behind
real time the engine is), wall (unix time), plus the runner's counters (STATUS_EXTRAS). The run's
final status has `ended` true and `end_reason`: "finished" (the source ran out), "stopped" (Ctrl-C,
SIGTERM, `stop()`) or "failed" (a damaged file, a lost device, a failed output), with `error` saying
why: a reader must not take a failed run's estimates for a whole recording's.

Readers (`emolive listen`, `emolive gui --connect`) take messages from any program that can reach
the address, so `parse_message` treats every one as untrusted: frame count, size, JSON, nesting,
types, ranges and topic are checked here, once, and anything off the schema is a SchemaError
the reader counts and reports before it goes on.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from emolive.engine.errors import EmoliveError
from emolive.engine.table_names import table_text

SCHEMA_VERSION = 1
SCALE = (1.0, 7.0)  # every rating in emolive (targets, model outputs, estimates) is on this scale
DIMENSIONS = ("activation", "valence", "dominance")  # the estimate's ratings, in this order everywhere
ESTIMATE_TOPIC = "avd"
STATUS_TOPIC = "status"
TURN_TOPIC = "turn"
TURN_KINDS = ("turn", "stream")
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # bounded: it is part of every topic
MAX_MESSAGE_BYTES = 1 << 20  # an estimate is ~500 bytes; even 10 000 classes fit in ~300 kB
_REASON_CHARS = 200  # a reason quotes attacker-chosen text: keep it one short line
_ESTIMATE_FLOATS = ("start", "end", "wall_start", "wall_end", *DIMENSIONS, "voiced_ratio", "latency_ms")
_ESTIMATE_ORDER = ("schema", "seq", "stream", "start", "end", "wall_start", "wall_end", *DIMENSIONS,
                   "classes", "speech", "voiced_ratio", "model", "latency_ms")  # estimate_payload's
_ESTIMATE_FIELDS = frozenset(_ESTIMATE_ORDER)
_STATUS_FIELDS = {"schema": int, "stream": str, "dropped_blocks": int, "skipped_windows": int, "lag_s": float,
                  "wall": float}
END_FINISHED, END_STOPPED, END_FAILED = END_REASONS = ("finished", "stopped", "failed")
STATUS_EXTRAS = {"estimates": int, "audio_s": float, "live": bool, "device_gaps": int, "gap_s": float,
                 "ended": bool, "end_reason": str, "error": str}
"""The runner's own status fields beyond _STATUS_FIELDS: optional for a reader, but of these types where
present (the schema file's), and counts and seconds never negative."""
_ERROR_CHARS = 500  # a final status's error: one line, as the run's own message (paths can make it long)
_STATUS_FLOATS = tuple(name for name, kind in {**_STATUS_FIELDS, **STATUS_EXTRAS}.items() if kind is float)
_STATUS_INTS = tuple(name for name, kind in {**_STATUS_FIELDS, **STATUS_EXTRAS}.items() if kind is int)


class SchemaError(ValueError):
    """A payload that does not follow the schema: a bug in whoever built it."""


class StreamIdError(EmoliveError, ValueError):
    """A stream id the schema does not take (the user's to fix: it is an option)."""


def check_stream_id(stream_id: object) -> str:
    """A stream id every message can carry: it is part of each ZeroMQ topic, so it is bounded."""
    if not isinstance(stream_id, str) or _STREAM_ID.fullmatch(stream_id) is None:
        why = ("at most 64 characters" if isinstance(stream_id, str) and len(stream_id) > 64 else
               "1-64 letters, digits, '_' and '-'")
        raise StreamIdError(f"stream id {stream_id!r}: use {why}")
    return stream_id


class Estimate(TypedDict):
    """One window's estimate, as every sink sends it (fields documented above)."""

    schema: int
    seq: int
    stream: str
    start: float
    end: float
    wall_start: float
    wall_end: float
    activation: float
    valence: float
    dominance: float
    classes: dict[str, float]
    speech: bool
    voiced_ratio: float
    model: str
    latency_ms: float


class Turn(Estimate):
    """One estimate over a whole speech turn, or over the whole stream (`kind`)."""

    kind: Literal["turn", "stream"]


class Status(TypedDict):
    """The fields every status has; runners add counters (estimates, audio_s, live) that readers may ignore."""

    schema: int
    stream: str
    dropped_blocks: int
    skipped_windows: int
    lag_s: float
    wall: float


def estimate_payload(*, seq: int, stream: str, start: float, end: float, wall_start: float, wall_end: float,
                     activation: float, valence: float, dominance: float, classes: Mapping[str, float],
                     speech: bool, voiced_ratio: float, model: str, latency_ms: float) -> dict[str, Any]:
    """Build an estimate, converting numpy scalars to plain Python so any JSON encoder takes it."""
    return {"schema": SCHEMA_VERSION, "seq": int(seq), "stream": str(stream),
            "start": float(start), "end": float(end), "wall_start": float(wall_start), "wall_end": float(wall_end),
            "activation": float(activation), "valence": float(valence), "dominance": float(dominance),
            "classes": {str(name): float(p) for name, p in classes.items()},
            "speech": bool(speech), "voiced_ratio": float(voiced_ratio), "model": table_text(str(model)),
            "latency_ms": float(latency_ms)}


def turn_payload(*, kind: str, **fields: Any) -> dict[str, Any]:
    """A turn: `estimate_payload`'s fields over the whole span, and its kind (see TURN_KINDS)."""
    if kind not in TURN_KINDS:
        raise SchemaError(f"turn kind {kind!r} is not one of {TURN_KINDS}")
    return {**estimate_payload(**fields), "kind": kind}


def validate_turn(payload: Mapping[str, Any]) -> None:
    """Raise SchemaError unless `payload` is an estimate with a known `kind` on top."""
    _require(payload.get("kind") in TURN_KINDS, f"turn kind must be one of {TURN_KINDS}")
    validate_estimate({name: value for name, value in payload.items() if name != "kind"})


def status_payload(*, stream: str, dropped_blocks: int, skipped_windows: int, lag_s: float, wall: float,
                   **extra: Any) -> dict[str, Any]:
    """Build a status message; `extra` carries runner-specific counters (readers ignore what they don't know)."""
    return {"schema": SCHEMA_VERSION, "stream": str(stream), "dropped_blocks": int(dropped_blocks),
            "skipped_windows": int(skipped_windows), "lag_s": float(lag_s), "wall": float(wall), **extra}


def end_fields(reason: str, error: str = "") -> dict[str, str]:
    """A final status's `end_reason` (END_REASONS) and, for a failed run, its `error` as one line of text a
    strict JSON reader takes (a file name's bytes that are not UTF-8 as \\xNN); none for a status
    before the end (`reason` "")."""
    if not reason:
        return {}
    if reason not in END_REASONS:
        raise SchemaError(f"end reason {reason!r} is not one of {END_REASONS}")
    cut = middle_cut(table_text(" ".join(error.split())), _ERROR_CHARS)
    return {"end_reason": reason, **({"error": cut} if reason == END_FAILED else {})}


def middle_cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: its start and its end, the middle left out. An error names its
    file first and says why last; cut at its end, a long path had left the reader no reason at all."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def end_text(status: Mapping[str, Any]) -> str | None:
    """How a checked final status says its stream ended, for a reader's line ("ended", "was stopped",
    "failed: why"); None for a status before the end. A publisher without `end_reason` "ended"."""
    if status.get("ended") is not True:
        return None
    reason = status.get("end_reason", END_FINISHED)
    if reason == END_FAILED:
        return f"failed: {middle_cut(printable(status.get('error') or 'no reason given'), _REASON_CHARS)}"
    return "was stopped" if reason == END_STOPPED else "ended"


def end_line(status: Mapping[str, Any]) -> str | None:
    """A reader's line for a stream's end, "stream X failed: why" (end_text, naming its stream); None before
    the end. One line for `listen`'s table, its stderr and the GUI's status bar."""
    ended = end_text(status)
    return None if ended is None else f"stream {printable(status['stream'], 64)} {ended}"


def topic(kind: str, payload: Mapping[str, Any]) -> str:
    """`avd.<stream>`, `turn.<stream>` or `status.<stream>`: subscribers filter on `topic_prefix(kind)`."""
    return f"{kind}.{payload['stream']}"


def topic_prefix(kind: str) -> bytes:
    """What a SUB socket subscribes to for every stream's messages of one kind (ESTIMATE_TOPIC, …)."""
    return f"{kind}.".encode()


def to_json(payload: Mapping[str, Any]) -> str:
    """Compact JSON; NaN/Inf are refused because they are not JSON and no reader could parse them."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise SchemaError(f"payload is not valid JSON: {exc}") from None


def validate_estimate(payload: Mapping[str, Any], *, extra_ok: bool = False) -> None:
    """Raise SchemaError naming the first field that breaks the schema; `extra_ok` lets unknown
    fields pass, as a reader must (a newer publisher may add fields without a version change)."""
    _check_common(payload)
    if not _ESTIMATE_FIELDS <= set(payload) or (not extra_ok and set(payload) != _ESTIMATE_FIELDS):
        raise SchemaError(f"estimate fields differ from the schema: missing {sorted(_ESTIMATE_FIELDS - set(payload))}, "
                          f"unexpected {sorted(set(payload) - _ESTIMATE_FIELDS)}")
    _require(type(payload["seq"]) is int and payload["seq"] >= 0, "seq must be an int >= 0")
    for name in _ESTIMATE_FLOATS:
        _require(type(payload[name]) is float and math.isfinite(payload[name]), f"{name} must be a finite float")
    _require(0.0 <= payload["start"] <= payload["end"] and payload["wall_start"] <= payload["wall_end"],
             "a window must not start before the stream or end before it starts")
    for name in DIMENSIONS:
        _require(SCALE[0] <= payload[name] <= SCALE[1], f"{name} {payload[name]} is off the {SCALE} scale")
    _require(0.0 <= payload["voiced_ratio"] <= 1.0, "voiced_ratio must be in [0, 1]")
    _require(payload["latency_ms"] >= 0.0, "latency_ms must be >= 0")
    _require(type(payload["speech"]) is bool, "speech must be a bool")
    _require(isinstance(payload["model"], str) and payload["model"] != "", "model must be a non-empty str")
    classes = payload["classes"]
    _require(isinstance(classes, dict) and all(isinstance(k, str) and type(v) is float and 0.0 <= v <= 1.0
                                               for k, v in classes.items()),
             "classes must map names to probabilities in [0, 1]")
    _require(not classes or abs(sum(classes.values()) - 1.0) < 1e-3, "class probabilities must sum to 1")
    if not extra_ok:
        to_json(payload)  # the checked fields always encode; this catches anything else a builder put in


def validate_status(payload: Mapping[str, Any], *, check_json: bool = True) -> None:
    """Raise SchemaError unless the status has every required field with its type (extras are allowed);
    `check_json=False` skips the encoding check for a payload that was just decoded from JSON."""
    _check_common(payload)
    for name, kind in _STATUS_FIELDS.items():
        _require(name in payload and type(payload[name]) is kind, f"status field {name} must be a {kind.__name__}")
    _require(payload["dropped_blocks"] >= 0 and payload["skipped_windows"] >= 0, "counters must be >= 0")
    _require(math.isfinite(payload["lag_s"]) and math.isfinite(payload["wall"]), "lag_s and wall must be finite")
    _require("seq" not in payload, "a status has no seq (estimates and turns do)")
    for name, kind in STATUS_EXTRAS.items():
        if name in payload:
            value = payload[name]
            _require(type(value) is kind, f"status field {name} must be a {kind.__name__}")
            # an int is finite however large (math.isfinite overflowed on 10**400, which no reader caught)
            _require(kind not in (int, float) or (value >= 0 and (kind is int or math.isfinite(value))),
                     f"{name} must be >= 0")
    _require(payload.get("end_reason", END_FINISHED) in END_REASONS, f"end_reason must be one of {END_REASONS}")
    _require(len(payload.get("error", "")) <= _ERROR_CHARS, f"error must be at most {_ERROR_CHARS} characters")
    if check_json:
        to_json(payload)  # the extras must be JSON too


def parse_message(frames: Sequence[bytes]) -> tuple[str, dict[str, Any]]:
    """An untrusted [topic, JSON] message as (ESTIMATE_TOPIC, TURN_TOPIC or STATUS_TOPIC, payload).

    Estimates and turns come back with the schema's fields only (unknown ones are ignored, as the
    schema asks of readers); statuses keep their extras. SchemaError gives the reason in one line.
    """
    if len(frames) != 2:
        raise SchemaError(f"{len(frames)} frames instead of [topic, JSON]")
    name, body = frames
    if len(name) + len(body) > MAX_MESSAGE_BYTES:
        raise SchemaError(f"{len(name) + len(body)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
    kind = next((k for k in (ESTIMATE_TOPIC, TURN_TOPIC, STATUS_TOPIC) if name.startswith(topic_prefix(k))), None)
    if kind is None:
        raise SchemaError(f"topic {bytes(name[:40])!r} is none of {ESTIMATE_TOPIC}.*, {TURN_TOPIC}.*, {STATUS_TOPIC}.*")
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
        raise SchemaError(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise SchemaError(f"JSON {type(payload).__name__} instead of an object")
    _numbers_as_floats(payload, _STATUS_FLOATS if kind == STATUS_TOPIC else _ESTIMATE_FLOATS)
    _whole_numbers_as_ints(payload, _STATUS_INTS if kind == STATUS_TOPIC else ("schema", "seq"))
    if kind == ESTIMATE_TOPIC:
        validate_estimate(payload, extra_ok=True)
        payload = {field: payload[field] for field in _ESTIMATE_ORDER}
    elif kind == TURN_TOPIC:
        _require(payload.get("kind") in TURN_KINDS, f"turn kind must be one of {TURN_KINDS}")
        validate_estimate({name: value for name, value in payload.items() if name != "kind"}, extra_ok=True)
        payload = {**{field: payload[field] for field in _ESTIMATE_ORDER}, "kind": payload["kind"]}
    else:
        validate_status(payload, check_json=False)
    if name != topic(kind, payload).encode():
        raise SchemaError(f"topic {bytes(name[:80])!r} does not match the payload's stream {payload['stream']!r}")
    return kind, payload


def _numbers_as_floats(payload: dict[str, Any], names: Sequence[str]) -> None:
    """The schema's numbers that came as JSON integers (`0`, `1`), made floats in place: JSON has one
    number type, and publishers in other languages write 0.0 as 0 (JavaScript's JSON.stringify does),
    which the schema file accepts and `listen` had refused as "must be a finite float". An integer too
    large for a float stays, and is refused as one."""
    classes = payload.get("classes")
    for values, keys in ((payload, names), *([(classes, list(classes))] if isinstance(classes, dict) else [])):
        for name in keys:
            if type(values.get(name)) is int:
                with contextlib.suppress(OverflowError):  # 10**400: no float
                    values[name] = float(values[name])


def _whole_numbers_as_ints(payload: dict[str, Any], names: Sequence[str]) -> None:
    """The schema's integers that came as whole JSON floats (`3.0`), made ints in place: the schema file
    takes them as integers (JSON Schema 2020-12), and a publisher whose numbers are all floats writes them so."""
    for name in names:
        value = payload.get(name)
        if type(value) is float and value.is_integer():  # finite: an infinity is no integer
            payload[name] = int(value)


def printable(text: str, limit: int | None = None, keep: str = "") -> str:
    """`text` with control and other non-printable characters escaped (\\x1b, \\n, \\u202e) but those
    in `keep`, cut to `limit` characters: text from a message must never move the cursor or rewrite a
    terminal."""
    escaped = "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)
    return escaped if limit is None or len(escaped) <= limit else escaped[:limit - 1] + "…"


class Rejections:
    """Counts the messages `parse_message` refused; `add` gives the one line a reader shows for them."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, exc: SchemaError) -> str:
        self.count += 1
        reason = printable(" ".join(str(exc).split()), _REASON_CHARS)
        return f"ignored {self.count} message{'s' if self.count > 1 else ''} off the emolive schema (latest: {reason})"


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _check_common(payload: Mapping[str, Any]) -> None:
    _require(type(payload.get("schema")) is int and payload["schema"] == SCHEMA_VERSION, f"schema must be {SCHEMA_VERSION}")
    _require(isinstance(payload.get("stream"), str) and _STREAM_ID.fullmatch(payload["stream"]) is not None,
             "stream must be letters, digits, '_' or '-'")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SchemaError(message)
