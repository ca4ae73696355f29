"""The one model-bundle format: a directory with `config.json` and `model.safetensors`.

A bundle is plain data (torchaudio's pipelines are the model): JSON says what the model is and
which front end it was trained on, safetensors holds the tensors. Nothing is pickled, so loading
a bundle can never run code. This module knows tensors and JSON only; the plugin that owns an
architecture builds the nn.Module and hands its expected tensors to `check_tensors`.

Weights may be stored as int8 with one float32 scale per output channel (symmetric, for every
floating tensor of 2 or more dimensions); they are dequantised to float32 on reading, so the rest
of the engine never sees the storage format.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from emolive.engine.errors import EmoliveError
from emolive.engine.features.config import FrontEndConfig
from emolive.engine.features.normalise import StreamNormConfig

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHT_STORAGE = ("float32", "int8")
SCALE_SUFFIX = ".int8_scale"
STREAM_NORMALISATION = "stream_normalisation"  # optional field: bundles written before it have none


class BundleError(EmoliveError, ValueError):
    """A bundle is missing, truncated, or does not match what it claims to be."""


@dataclass(frozen=True)
class BundleMeta:
    """Everything in config.json apart from the format version and the weight storage."""

    architecture: str
    hyperparameters: dict[str, Any]
    frontend: FrontEndConfig
    class_names: tuple[str, ...] = ()
    label_scale: tuple[float, float] = (1.0, 7.0)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # the running per-stream normalisation the engine applies before the model (None: off)
    stream_normalisation: StreamNormConfig | None = None


def write_bundle(path: str | Path, meta: BundleMeta, tensors: Mapping[str, torch.Tensor], int8: bool = False) -> Path:
    """Write a bundle directory (created if needed); returns its path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(quantise_int8(tensors) if int8 else tensors, str(path / WEIGHTS_FILE))
    config = {
        "format_version": FORMAT_VERSION,
        "architecture": meta.architecture,
        "hyperparameters": meta.hyperparameters,
        "frontend": meta.frontend.to_dict(),
        "class_names": list(meta.class_names),
        "label_scale": list(meta.label_scale),
        "training": meta.training,
        "metrics": meta.metrics,
        "weights": "int8" if int8 else "float32",
    }
    if meta.stream_normalisation is not None:
        config[STREAM_NORMALISATION] = meta.stream_normalisation.to_dict()
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return path


def read_bundle(path: str | Path) -> tuple[BundleMeta, dict[str, torch.Tensor]]:
    """Read and validate a bundle directory; tensors come back as float32 whatever the storage."""
    path = Path(path)
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        blob = (path / WEIGHTS_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path}: cannot read bundle ({err}); expected a directory with {CONFIG_FILE} and {WEIGHTS_FILE}") from err
    meta, storage = _parse_config(config, path)
    try:
        tensors = load_safetensors(blob)
    except SafetensorError as err:
        raise BundleError(f"{path / WEIGHTS_FILE}: not a complete safetensors file ({err})") from err
    return meta, dequantise_int8(tensors, path) if storage == "int8" else tensors


def check_tensors(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Fail unless `tensors` has exactly the names, shapes and dtypes of `expected` (a state_dict)."""
    problems = [f"missing {k}" for k in expected if k not in tensors]
    problems += [f"unexpected {k}" for k in tensors if k not in expected]
    for name in expected.keys() & tensors.keys():
        want, got = expected[name], tensors[name]
        if want.shape != got.shape or want.dtype != got.dtype:
            problems.append(f"{name} is {got.dtype} {list(got.shape)}, expected {want.dtype} {list(want.shape)}")
    if problems:
        raise BundleError(f"{source}: weights do not match the architecture: " + "; ".join(sorted(problems)))


def quantise_int8(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Symmetric per-output-channel int8 for floating tensors of 2+ dims; others pass unchanged."""
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if not (t.is_floating_point() and t.dim() >= 2):
            out[name] = t
            continue
        scale = t.abs().flatten(1).amax(1).float() / 127.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row stays zero
        out[name] = torch.round(t / _per_row(scale, t)).clamp(-127, 127).to(torch.int8)
        out[name + SCALE_SUFFIX] = scale
    return out


def dequantise_int8(tensors: Mapping[str, torch.Tensor], source: str | Path) -> dict[str, torch.Tensor]:
    """Inverse of `quantise_int8`; every int8 tensor must have its matching scale and vice versa."""
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name.endswith(SCALE_SUFFIX):
            if name[: -len(SCALE_SUFFIX)] not in tensors:
                raise BundleError(f"{source}: scale {name} has no int8 tensor")
            continue
        if t.dtype != torch.int8:
            out[name] = t
            continue
        scale = tensors.get(name + SCALE_SUFFIX)
        if scale is None or scale.shape != (t.shape[0],) or scale.dtype != torch.float32:
            raise BundleError(f"{source}: int8 tensor {name} needs a float32 scale of shape [{t.shape[0]}]")
        out[name] = t.float() * _per_row(scale, t)
    return out


def _per_row(scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return scale.view(-1, *([1] * (like.dim() - 1)))


_FIELD_TYPES: dict[str, type] = {
    "format_version": int,
    "architecture": str,
    "hyperparameters": dict,
    "frontend": dict,
    "class_names": list,
    "label_scale": list,
    "training": dict,
    "metrics": dict,
    "weights": str,
}


def _parse_config(config: Any, path: Path) -> tuple[BundleMeta, str]:
    """Check every field of config.json; return the metadata and the weight storage."""
    where = path / CONFIG_FILE
    if not isinstance(config, dict):
        raise BundleError(f"{where}: expected a JSON object")
    missing = sorted(_FIELD_TYPES.keys() - config.keys())
    unknown = sorted(config.keys() - _FIELD_TYPES.keys() - {STREAM_NORMALISATION})
    if missing or unknown:
        raise BundleError(f"{where}: missing field(s) {missing}, unknown field(s) {unknown}")
    for name, kind in _FIELD_TYPES.items():
        if not isinstance(config[name], kind):
            raise BundleError(f"{where}: field {name!r} must be a JSON {kind.__name__}")
    if config["format_version"] != FORMAT_VERSION:
        raise BundleError(f"{where}: format_version {config['format_version']}, this emolive reads {FORMAT_VERSION}")
    if config["weights"] not in WEIGHT_STORAGE:
        raise BundleError(f"{where}: weights must be one of {WEIGHT_STORAGE}, not {config['weights']!r}")
    names = config["class_names"]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise BundleError(f"{where}: class_names must be distinct strings")
    scale = config["label_scale"]
    if len(scale) != 2 or not all(isinstance(v, (int, float)) for v in scale) or not scale[0] < scale[1]:
        raise BundleError(f"{where}: label_scale must be [low, high] with low < high")
    frontend = _parse_frontend(config["frontend"], where)
    meta = BundleMeta(
        architecture=config["architecture"],
        hyperparameters=config["hyperparameters"],
        frontend=frontend,
        class_names=tuple(names),
        label_scale=(float(scale[0]), float(scale[1])),
        training=config["training"],
        metrics=config["metrics"],
        stream_normalisation=_parse_stream_normalisation(config.get(STREAM_NORMALISATION), frontend, where),
    )
    return meta, config["weights"]


def _parse_frontend(data: dict, where: Path) -> FrontEndConfig:
    """Rebuild the front-end config; a field left out is an error, not a silent default."""
    try:
        cfg = FrontEndConfig.from_dict(data)
    except (TypeError, ValueError, AttributeError) as err:
        raise BundleError(f"{where}: invalid frontend config ({err})") from err
    if cfg.to_dict() != data:
        raise BundleError(f"{where}: frontend config has missing fields; write FrontEndConfig.to_dict() whole")
    return cfg


def _parse_stream_normalisation(data: Any, frontend: FrontEndConfig, where: Path) -> StreamNormConfig | None:
    """The optional running normaliser; its columns must exist in the front end's features."""
    if data is None:
        return None
    try:
        cfg = StreamNormConfig.from_dict(data)
    except (TypeError, ValueError) as err:
        raise BundleError(f"{where}: invalid {STREAM_NORMALISATION} ({err})") from err
    if max(cfg.columns - 1, cfg.voicing_column) >= frontend.num_features:
        raise BundleError(f"{where}: {STREAM_NORMALISATION} reads columns the front end's "
                          f"{frontend.num_features} features do not have")
    return cfg
