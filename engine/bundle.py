"""The one model-bundle format: a directory with `config.json`, `model.safetensors` and, for students,
`model.onnx`.

A bundle is plain data (torchaudio's pipelines are the model): JSON says what the model is and
which front end it was trained on, safetensors holds the tensors. Nothing is pickled, so loading
a bundle can never run code. This module knows numpy arrays and JSON only (no torch: the light
engine loads bundles too); the plugin that owns an architecture says which tensors it expects.

A bundle is a file a user downloads, so it is untrusted, and everything is checked before anything
is allocated from it: files are opened without blocking and must be regular files of bounded size
(a FIFO, a folder, /dev/zero or a huge file is refused unread); every config.json field is type- and
range-checked; the safetensors header is parsed and its names, dtypes and shapes compared with
what the architecture expects, and the file size with what they add up to, before the data is
read; weights must be finite. Each failure is one `BundleError` line.

Weights may be stored as int8 with one float32 scale per output channel (symmetric, for every
floating tensor of 2 or more dimensions); they are dequantised to float32 on reading, so the rest
of the engine never sees the storage format.

`model.onnx` is derived data: the runtime graph `trainer` writes next to the weights, stamped with
the SHA-256 of the model.safetensors it was made from (`weights_sha256`) so a stale graph is refused.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from emolive.engine.errors import EmoliveError
from emolive.engine.features.config import FrontEndConfig
from emolive.engine.files import RefusedFile, read_bounded, write_whole
from emolive.engine.features.normalise import StreamNormConfig
from emolive.engine.schema import SCALE, printable

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
GRAPH_FILE = "model.onnx"
# every file a bundle may hold (the trainer's records beside the model: trainer/history.py, trainer/data/splits.py,
# trainer/commands.py): writing a bundle replaces these; anything else in the folder is the user's
BUNDLE_FILES = frozenset({CONFIG_FILE, WEIGHTS_FILE, GRAPH_FILE, "history.csv", "splits.csv", "learned_clips.csv",
                          "results.json"})
WEIGHT_STORAGE = ("float32", "int8")
SCALE_SUFFIX = ".int8_scale"
FEATURE_STD = "feature_std"  # the input normalisation's divisor (plugins.student.model)
FEATURE_STD_FLOOR = 1e-5  # the least std training stores for a feature (a constant one is floored to it)
STREAM_NORMALISATION = "stream_normalisation"  # optional field: bundles written before it have none
# optional field, the SHA-256 of model.safetensors as written: flipped bits in int8 weights still parse as
# weights, and a stale-graph message then sent users to re-export the damage as the bundle's graph
WEIGHTS_DIGEST = "weights_sha256"
MAX_CONFIG_BYTES = 1 << 20  # a config.json is ~2 kB
MAX_HEADER_BYTES = 1 << 20  # a safetensors header: ~100 bytes per tensor
MAX_GRAPH_BYTES = 256 << 20  # a student graph is ~0.3 MB; the bound only stops a huge file being read
MAX_CLASSES = 1024
MAX_NAME_CHARS = 200
_DTYPES = {"F32": np.dtype("<f4"), "I8": np.dtype("i1")}  # the only storage dtypes a bundle may hold
_HEADER_LENGTH = struct.Struct("<Q")

Shapes = Mapping[str, tuple[int, ...]]
"""Tensor name -> shape of the float32 tensors an architecture's module holds (its state_dict)."""


# far beyond any trained weight or feature statistic (the shipped students' largest is below 100), far
# below where float32 sums of a layer's products overflow (3.4e38)
MAX_WEIGHT = 1e12


class BundleError(EmoliveError, ValueError):
    """A bundle is missing, truncated, or does not match what it claims to be."""


@dataclass(frozen=True)
class BundleMeta:
    """Everything in config.json apart from the format version and the weight storage."""

    architecture: str
    hyperparameters: dict[str, Any]
    frontend: FrontEndConfig
    class_names: tuple[str, ...] = ()
    label_scale: tuple[float, float] = SCALE  # the schema's; read_bundle refuses any other
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # the running per-stream normalisation the engine applies before the model (None: off)
    stream_normalisation: StreamNormConfig | None = None

    @property
    def trained_on(self) -> list[str]:
        """The data the training record names (`training.data`), as text; none where it names none or
        something else: the record is free-form, and a bundle's is untrusted (a number there had ended
        `trainer report` and the GUI's model details in a traceback)."""
        data = self.training.get("data")
        return [str(source) for source in data] if isinstance(data, list) else []


@dataclass(frozen=True)
class Bundle:
    """A bundle read and checked: its metadata, float32 tensors, and the digest of its weights file."""

    meta: BundleMeta
    tensors: dict[str, np.ndarray]
    weights_sha256: str


def write_bundle(path: str | Path, meta: BundleMeta, tensors: Mapping[str, np.ndarray], int8: bool = False,
                 finish: Callable[[Path], None] | None = None) -> Path:
    """Write a bundle directory atomically, replacing a bundle already there; returns its path.

    Everything goes into a new directory beside the target (`.<name>.partial-<random>`): the
    weights, config.json, then whatever `finish(directory)` adds (a runtime graph, a training
    run's history). Files and directory are fsynced, then the directory is renamed onto the target,
    so a crash or kill at any point leaves the old bundle or none, never a mix that loads with
    stale metadata. Replacing moves the old bundle aside first (rename), then removes it: a kill
    between those renames leaves no bundle at the target and both copies beside it. A target that
    exists and is not a bundle (no config.json, not empty) is refused, never deleted. Files are
    written through open(), so they get the umask's mode (safetensors' save_file would make 0600).
    """
    path = Path(path)
    check_bundle_target(path)
    # `.` or `..` names no folder to put the partial one beside: the folder it is, as the OS resolves it
    where = Path(os.path.realpath(path)) if path.name in ("", "..") else path
    where.parent.mkdir(parents=True, exist_ok=True)
    partial = where.with_name(f".{where.name}.partial-{secrets.token_hex(4)}")
    partial.mkdir()  # not mkdtemp: that would make the bundle 0700 whatever the umask
    try:
        tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        weights = save_safetensors(quantise_int8(tensors) if int8 else tensors)
        _write_synced(partial / WEIGHTS_FILE, weights)
        _write_synced(partial / CONFIG_FILE, json_text(_config(meta, int8, hashlib.sha256(weights).hexdigest())).encode())
        if finish is not None:
            finish(partial)
            for f in partial.iterdir():
                _fsync(f)
        _fsync(partial)
        _replace_dir(partial, where)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return path


def _config(meta: BundleMeta, int8: bool, weights_sha256: str) -> dict[str, Any]:
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
        WEIGHTS_DIGEST: weights_sha256,
    }
    if meta.stream_normalisation is not None:
        config[STREAM_NORMALISATION] = meta.stream_normalisation.to_dict()
    return config


def check_bundle_target(path: Path) -> None:
    """A bundle may be written to a new path, an empty directory or over a bundle that holds nothing but
    a bundle's files; anything else is the user's and stays (BundleError): retraining into a bundle
    folder deleted the notes and folders kept beside the model. Callers check early, before the work
    that makes the bundle."""
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink():  # replaced whole, a link's target would stay behind, or be deleted through it
        raise BundleError(f"{path}: is a symbolic link; write the bundle to the folder itself or a new one")
    if not path.is_dir():
        raise BundleError(f"{path}: exists and is not a directory; write the bundle to a new directory")
    if not any(path.iterdir()):
        return
    if not (path / CONFIG_FILE).is_file():
        raise BundleError(f"{path}: exists, is not empty and holds no {CONFIG_FILE} (not a bundle); "
                          "write the bundle to a new or empty directory")
    if not _is_bundle_config(path):  # a project's own config.json: it is not ours to delete
        raise BundleError(f"{path}: exists and its {CONFIG_FILE} is not a bundle's; write the bundle to a new or "
                          "empty directory")
    if others := sorted(entry.name for entry in path.iterdir() if entry.name not in BUNDLE_FILES or entry.is_dir()):
        shown = ", ".join(printable(name, 60) for name in others[:3]) + (" …" if len(others) > 3 else "")
        raise BundleError(f"{path}: holds {len(others)} file(s) a bundle does not ({shown}), which replacing the "
                          "bundle would delete; move them out, or write the bundle to a new directory")


def is_shipped(path: Path) -> bool:
    """Whether `path` lies in emolive's own plugins package (the bundles it ships as `student`, `teacher`):
    `trainer --out` there replaced the installed default model with a 30-clip test run, without a word."""
    from importlib.util import find_spec

    spec = find_spec("emolive.plugins")
    where = path.resolve()
    return any(where.is_relative_to(Path(folder).resolve()) for folder in (spec.submodule_search_locations or ()))


def _is_bundle_config(path: Path) -> bool:
    """Whether `path`'s config.json reads as a bundle's (a JSON object naming a format and an architecture)."""
    try:
        config = read_config(path)
    except BundleError:
        return False
    return {"format_version", "architecture"} <= config.keys()


def _replace_dir(new: Path, target: Path) -> None:
    """Rename `new` onto `target`; an existing target is renamed aside first, then removed. The folder
    this process runs in is filled in place instead (_replace_files): renamed aside and removed, it
    left the user's shell (`trainer train --out .`) in a deleted folder that showed no bundle."""
    if _is_current_folder(target):
        _replace_files(new, target)
        return
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        os.rename(target, old)
    os.rename(new, target)
    _fsync(target.parent)
    if old is not None:
        shutil.rmtree(old)


def _is_current_folder(path: Path) -> bool:
    try:
        return os.path.samefile(path, os.getcwd())
    except OSError:  # no such target yet, or a current folder since deleted
        return False


def _replace_files(new: Path, target: Path) -> None:
    """Move `new`'s files into the folder `target`, whose old bundle files are removed first, config.json
    last in: a kill midway leaves a folder whose config names other weights (refused as damaged, never
    loaded mixed) where a rename would have left the old bundle whole."""
    for stale in target.iterdir():
        if not (new / stale.name).exists():
            stale.unlink()
    for name in sorted((f.name for f in new.iterdir()), key=lambda name: name == CONFIG_FILE):
        os.replace(new / name, target / name)
    _fsync(target)
    new.rmdir()


def json_text(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """`value` as indented JSON that every parser reads, one function for every JSON file a run writes
    (config.json, results.json): a NaN or infinite number, what a score that cannot be measured is
    (a dimension a data set leaves unlabelled), is written `null`, never the bare `NaN` Python's json
    would write and JavaScript's JSON.parse refuses."""
    return json.dumps(_finite(value), indent=2, allow_nan=False, default=default) + "\n"


def _finite(value: Any) -> Any:
    """`value` with every float (numpy's too) that is NaN or infinite replaced by None, at any depth."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def check_file_target(path: Path) -> None:
    """A file may be written (replace_file) into an existing folder, where nothing is or over a regular
    file; a folder, link, device or FIFO there is the user's and is refused, never swapped for a file
    (an export run as root once turned /dev/full into one). Callers check early, before the work
    that makes the file; replace_file checks again. (os.path's tests: a path they cannot even look
    at, e.g. a name too long, passes here and fails in replace_file as a place it cannot write.)"""
    if not os.path.isdir(path.parent):
        raise BundleError(f"{path}: {path.parent} is not an existing folder; create it, or write elsewhere")
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
        raise BundleError(f"{path}: exists and is not a regular file (a folder, link, device or pipe); "
                          "write to a new path or over a regular file")


def replace_file(path: Path, data: bytes) -> None:
    """`data` as the file `path`, whole (engine.files.write_whole), synced with its folder's entry: only
    a regular file there is replaced (check_file_target), a symbolic link never written through (a
    downloaded bundle's `model.onnx -> ~/.bashrc` must not overwrite the user's file). A place that
    cannot be written is one BundleError line."""
    path = Path(path)
    check_file_target(path)
    try:
        write_whole(path, data, sync=True)
    except OSError as err:  # a full disk, an I/O error, a folder it may not write
        raise _unwritable(path, err) from None
    _fsync(path.parent)


def _unwritable(path: Path, err: OSError) -> BundleError:
    return BundleError(f"cannot write {path} ({err.strerror}); choose another path")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    """Flush a file's or a directory's entry to disk (directories: so a rename survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_config(path: str | Path) -> dict[str, Any]:
    """A bundle's config.json as a JSON object, read safely (regular file, bounded size, bounded nesting)."""
    where = Path(path) / CONFIG_FILE
    text = read_regular_file(where, MAX_CONFIG_BYTES)
    try:
        config = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as err:
        # ValueError: e.g. an integer literal of more digits than Python converts
        raise BundleError(f"{where}: not a usable JSON file ({parse_failure(err)})") from None
    if not isinstance(config, dict):
        raise BundleError(f"{where}: expected a JSON object")
    return config


def read_bundle(path: str | Path, expected: Callable[[BundleMeta, Path], Shapes]) -> Bundle:
    """Read and validate a bundle directory; tensors come back as float32 whatever the storage.

    `expected(meta, path)` is the architecture's word: it checks the hyperparameters (raising
    BundleError) and returns the tensor shapes its module holds. It runs before the weights are read.
    """
    path = Path(path)
    config = read_config(path)
    meta, storage = parse_config(config, path)
    layout = _storage_layout(expected(meta, path), storage)
    blob = _read_weights(path / WEIGHTS_FILE, layout)
    digest = hashlib.sha256(blob).hexdigest()
    if config.get(WEIGHTS_DIGEST, digest) != digest:  # bundles written before the field have none to compare
        raise BundleError(f"{path / WEIGHTS_FILE}: its sha256 is not the one config.json records: a damaged or "
                          "altered copy of the bundle; copy it again from where it came")
    try:
        tensors = load_safetensors(blob)
    except SafetensorError as err:
        raise BundleError(f"{path / WEIGHTS_FILE}: not a complete safetensors file ({err})") from err
    if storage == "int8":
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing scale: refused just below
            tensors = dequantise_int8(tensors, path)
    for name, t in tensors.items():  # as the model holds them: a finite int8 scale of 3e38 overflowed
        if t.dtype.kind != "f" or not t.size:
            continue
        if not np.isfinite(t).all():
            raise BundleError(f"{path / WEIGHTS_FILE}: tensor {name} holds NaN or infinite values")
        if (largest := float(np.abs(t).max())) > MAX_WEIGHT:
            # a scale of 1e36 kept every weight finite, and float32 sums of them overflowed to NaN
            raise BundleError(f"{path / WEIGHTS_FILE}: tensor {name} holds {largest:.3g}, beyond any trained "
                              f"weight (at most {MAX_WEIGHT:g} here): the bundle is damaged; copy it again")
    std = tensors.get(FEATURE_STD)
    if std is not None and not (std >= FEATURE_STD_FLOOR).all():
        raise BundleError(f"{path / WEIGHTS_FILE}: {FEATURE_STD} holds {float(std.min()):g}; a feature's training "
                          f"std is at least {FEATURE_STD_FLOOR:g} (a 0 divided every estimate by it)")
    return Bundle(meta, tensors, digest)


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a bundle file (`read_bounded`, links not followed); anything else is a BundleError.

    Not following a link matters: a bundle is untrusted, and a member linked to a file outside it
    (a key, another user's data) would otherwise be read, and its bytes could surface in an error
    or in the model.
    """
    check_not_a_link(path)
    try:
        return read_bounded(path, limit, follow_links=False)
    except OSError as err:
        raise BundleError(f"{path}: cannot read bundle file ({err.strerror}); a bundle is a directory with "
                          f"{CONFIG_FILE} and {WEIGHTS_FILE}") from None
    except RefusedFile as err:
        raise BundleError(f"{path}: {err} (a bundle holds plain files of bounded size)") from None


def check_not_a_link(path: Path) -> None:
    """A bundle member that is a symbolic link is refused, whatever reads it."""
    if path.is_symlink():
        raise BundleError(f"{path}: a symbolic link; a bundle holds plain files only")


def bundle_member(path: Path) -> Path | None:
    """`path` where the bundle holds it as a file, None where it holds none; a link is refused: a
    member's bytes can surface in an error (a table's header is quoted when it lacks a column)."""
    check_not_a_link(path)
    return path if path.is_file() else None


def parse_failure(err: Exception) -> str:
    """Why a file did not parse, without its content: the error's kind and, for JSON, the position
    (a decoder's own message can quote the bytes it stumbled on)."""
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON at line {err.lineno} column {err.colno}"
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 at byte {err.start}"
    return type(err).__name__


def read_graph(path: str | Path) -> bytes:
    """The bundle's model.onnx, read as safely as the rest (the caller checks its digest); a bundle
    without one (written by hand, or before graphs shipped) is told how to get it."""
    where = Path(path) / GRAPH_FILE
    if not where.exists() and not where.is_symlink():
        raise BundleError(f"{where} is missing; write it from the bundle's weights with "
                          f"`trainer export --into-bundle {path}`")
    return read_regular_file(where, MAX_GRAPH_BYTES)


def _storage_layout(shapes: Shapes, storage: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """What the file must hold for these float32 shapes: int8 storage adds one scale per 2+-dim tensor."""
    layout: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, shape in shapes.items():
        if storage == "int8" and len(shape) >= 2:
            layout[name] = ("I8", tuple(shape))
            layout[name + SCALE_SUFFIX] = ("F32", (shape[0],))
        else:
            layout[name] = ("F32", tuple(shape))
    return layout


def _read_weights(path: Path, layout: Mapping[str, tuple[str, tuple[int, ...]]]) -> bytes:
    """The safetensors file, once its header matches `layout` and its size what that layout needs."""
    data_bytes = sum(_DTYPES[d].itemsize * math.prod(s) for d, s in layout.values())
    blob = read_regular_file(path, 8 + MAX_HEADER_BYTES + data_bytes)
    if len(blob) < 8:
        raise BundleError(f"{path}: not a complete safetensors file ({len(blob)} bytes)")
    (header_len,) = _HEADER_LENGTH.unpack_from(blob)
    if header_len > min(MAX_HEADER_BYTES, len(blob) - 8):  # the length field's value is file content: not shown
        raise BundleError(f"{path}: not a complete safetensors file (its header length is out of range)")
    try:
        header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as err:
        raise BundleError(f"{path}: not a complete safetensors file (header: {parse_failure(err)})") from None
    if not isinstance(header, dict):
        raise BundleError(f"{path}: not a complete safetensors file (header is not a JSON object)")
    header.pop("__metadata__", None)
    _check_header(header, layout, path)
    if len(blob) != 8 + header_len + data_bytes:
        raise BundleError(f"{path}: not a complete safetensors file ({len(blob)} bytes, the header "
                          f"describes {8 + header_len + data_bytes})")
    return blob


def _check_header(header: dict, layout: Mapping[str, tuple[str, tuple[int, ...]]], path: Path) -> None:
    """Exactly the layout's names, each with its dtype and shape; the message lists every difference."""
    problems = [f"missing {k}" for k in layout if k not in header]
    problems += [f"unexpected {printable(k, MAX_NAME_CHARS)}" for k in header if k not in layout]
    for name in layout.keys() & header.keys():
        entry, (dtype, shape) = header[name], layout[name]
        got_dtype = entry.get("dtype") if isinstance(entry, dict) else None
        got_shape = entry.get("shape") if isinstance(entry, dict) else None
        if got_dtype != dtype or got_shape != list(shape):
            got = printable(f"{_dtype_name(got_dtype)} {got_shape}", MAX_NAME_CHARS)
            problems.append(f"{name} is {got}, expected {_dtype_name(dtype)} {list(shape)}")
    if problems:
        raise BundleError(f"{path}: weights do not match the architecture: " + "; ".join(sorted(problems)))


def _dtype_name(code: Any) -> str:
    return str(_DTYPES[code]) if isinstance(code, str) and code in _DTYPES else repr(code)


def quantise_int8(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Symmetric per-output-channel int8 for floating tensors of 2+ dims; others pass unchanged."""
    out: dict[str, np.ndarray] = {}
    for name, t in tensors.items():
        if not (t.dtype.kind == "f" and t.ndim >= 2):
            out[name] = t
            continue
        scale = (np.abs(t).reshape(len(t), -1).max(1) / np.float32(127.0)).astype(np.float32)
        scale = np.where(scale > 0, scale, np.float32(1.0))  # an all-zero row stays zero
        out[name] = np.clip(np.round(t / _per_row(scale, t)), -127, 127).astype(np.int8)
        out[name + SCALE_SUFFIX] = scale
    return out


def dequantise_int8(tensors: Mapping[str, np.ndarray], source: str | Path) -> dict[str, np.ndarray]:
    """Inverse of `quantise_int8`; every int8 tensor must have its matching scale and vice versa."""
    out: dict[str, np.ndarray] = {}
    for name, t in tensors.items():
        if name.endswith(SCALE_SUFFIX):
            if name[: -len(SCALE_SUFFIX)] not in tensors:
                raise BundleError(f"{source}: scale {name} has no int8 tensor")
            continue
        if t.dtype != np.int8:
            out[name] = t
            continue
        scale = tensors.get(name + SCALE_SUFFIX)
        if scale is None or scale.shape != (t.shape[0],) or scale.dtype != np.float32:
            raise BundleError(f"{source}: int8 tensor {name} needs a float32 scale of shape [{t.shape[0]}]")
        out[name] = t.astype(np.float32) * _per_row(scale, t)
    return out


def _per_row(scale: np.ndarray, like: np.ndarray) -> np.ndarray:
    return scale.reshape(-1, *([1] * (like.ndim - 1)))


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


def parse_config(config: dict[str, Any], path: Path) -> tuple[BundleMeta, str]:
    """Check every field of config.json; return the metadata and the weight storage."""
    where = path / CONFIG_FILE
    missing = sorted(_FIELD_TYPES.keys() - config.keys())
    unknown = sorted(config.keys() - _FIELD_TYPES.keys() - {STREAM_NORMALISATION, WEIGHTS_DIGEST})
    if missing or unknown:
        raise BundleError(f"{where}: missing field(s) {missing}, unknown field(s) {unknown}")
    for name, kind in _FIELD_TYPES.items():
        if not isinstance(config[name], kind) or isinstance(config[name], bool):
            raise BundleError(f"{where}: field {name!r} must be a JSON {kind.__name__}")
    if WEIGHTS_DIGEST in config and not (isinstance(config[WEIGHTS_DIGEST], str)
                                         and re.fullmatch("[0-9a-f]{64}", config[WEIGHTS_DIGEST])):
        raise BundleError(f"{where}: field {WEIGHTS_DIGEST!r} must be a SHA-256 in 64 hex digits")
    if config["format_version"] != FORMAT_VERSION:
        raise BundleError(f"{where}: format_version {config['format_version']}, this emolive reads {FORMAT_VERSION}")
    if config["weights"] not in WEIGHT_STORAGE:
        raise BundleError(f"{where}: weights must be one of {WEIGHT_STORAGE}, not {config['weights']!r}")
    if len(config["architecture"]) > MAX_NAME_CHARS or not config["architecture"].isprintable():
        raise BundleError(f"{where}: architecture name longer than {MAX_NAME_CHARS} characters or not printable")
    names, scale = config["class_names"], config["label_scale"]
    check_class_names(names, str(where))
    check_label_scale(scale, str(where))
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
    trained_with = config["training"].get("config", {}).get("stream_norm") if isinstance(
        config["training"].get("config"), dict) else None
    if isinstance(trained_with, bool) and trained_with != (meta.stream_normalisation is not None):
        # without it a model trained on normalised features gets raw ones: every estimate wrong, silently
        raise BundleError(f"{where}: training.config.stream_norm is {str(trained_with).lower()} but the field "
                          f"{STREAM_NORMALISATION} is {'missing' if trained_with else 'there'}; the bundle is "
                          "incomplete or edited: export it again")
    return meta, config["weights"]


def check_class_names(names: Sequence[Any], where: str) -> None:
    """At most MAX_CLASSES distinct non-empty printable strings: class names become CSV columns (two of
    one name were one column, a probability lost), message fields and labels a terminal shows."""
    if (not isinstance(names, (list, tuple)) or len(names) > MAX_CLASSES or len(set(names)) != len(names)
            or not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME_CHARS and n.isprintable() for n in names)):
        raise BundleError(f"{where}: class_names must be at most {MAX_CLASSES} distinct non-empty printable strings "
                          f"of at most {MAX_NAME_CHARS} characters")


def check_label_scale(scale: Sequence[Any], where: str) -> None:
    """emolive's 1-7 scale: the runner clips to SCALE, so another scale would be cut, not mapped."""
    if (not isinstance(scale, (list, tuple)) or len(scale) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in scale)
            or not scale[0] < scale[1]):
        raise BundleError(f"{where}: label_scale must be [low, high] with low < high, both finite")
    if (float(scale[0]), float(scale[1])) != SCALE:
        raise BundleError(f"{where}: label_scale {list(scale)} is not emolive's {list(SCALE)}; "
                          "map the model's outputs onto that scale before bundling it")


def _parse_frontend(data: dict, where: Path) -> FrontEndConfig:
    """Rebuild the front-end config; a field left out or out of range is an error, not a silent default."""
    try:
        return FrontEndConfig.from_dict(data)
    except ValueError as err:
        raise BundleError(f"{where}: invalid frontend config ({err})") from err


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
    frame_rate = frontend.sample_rate / frontend.frame_shift
    if abs(cfg.frame_rate - frame_rate) > 1e-9 * frame_rate:  # its time constants count frames at this rate
        raise BundleError(f"{where}: {STREAM_NORMALISATION}.frame_rate {cfg.frame_rate:g} is not the front end's "
                          f"{frame_rate:g} frames a second")
    return cfg


def bounded_ints(hyperparameters: dict[str, Any], bounds: Mapping[str, tuple[int, int]], where: str) -> None:
    """Hyperparameters must be exactly `bounds`' keys, each a JSON integer within its [low, high]."""
    if set(hyperparameters) != set(bounds):
        raise BundleError(f"{where}: hyperparameters must list exactly {sorted(bounds)}, got {sorted(hyperparameters)}")
    for name, (low, high) in bounds.items():
        value = hyperparameters[name]
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise BundleError(f"{where}: hyperparameter {name} must be an integer in [{low}, {high}], got {value!r}")
