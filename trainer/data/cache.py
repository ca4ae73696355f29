"""Front-end features computed once per audio file and kept on disk.

The features come from `engine.features.compute`, the code the live engine runs, so training
sees exactly the live features. Entries are keyed by the front-end config's digest and the sha1
of the audio file's bytes: a changed config or a changed file can never serve stale features.
Entries are plain .npy arrays (read with allow_pickle=False), written atomically. `ArrayStore`
is that storage alone, shared with the embedding caches (trainer.embeddings).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from emolive.engine.runner import NO_FRAME, OFFLINE_BLOCK_SIZE
from emolive.engine.files import RefusedFile, read_bounded
from emolive.engine.console import bar_disabled
from emolive.engine.features import FrontEndConfig, compute
from emolive.engine.sources.base import SAMPLE_RATE, AudioSourceError
from emolive.engine.sources.file import read_mono_16k
from emolive.trainer.data.augment import AugmentConfig, NoiseBank, augment, view_rng
from emolive.trainer.data.utterance import Utterance, same_labels
from emolive.trainer.errors import TrainerError
from emolive.trainer.whole_files import replace_whole

log = logging.getLogger(__name__)

MFB = "mfb"  # the features spec (`--features`) naming this cache's MFB+F0 front-end features


def load_audio(data: bytes, what: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode audio bytes (`what` names them in errors) to float32 mono 16 kHz with the engine's own
    decoders and conversion (libsndfile or FFmpeg, then ToMono16k: channels averaged, soxr) in the
    blocks `emolive score` reads, so training hears a file exactly as the engine does, in the memory
    of the converted audio whatever the file's rate and channels."""
    if sample_rate != SAMPLE_RATE:
        raise TrainerError(f"a front end at {sample_rate} Hz: the engine's sources deliver {SAMPLE_RATE} Hz only")
    try:
        return read_mono_16k(io.BytesIO(data), what, OFFLINE_BLOCK_SIZE)
    except AudioSourceError as err:  # unreadable, damaged or truncated, or a rate out of bounds
        raise TrainerError(str(err)) from None


MAX_AUDIO_BYTES = 4 << 30  # 4 GiB: 35 h of 16 kHz 16-bit mono; a manifest naming more is a mistake


def read_audio_bytes(audio_path: str | Path) -> bytes:
    """The bytes of an audio file, read as the engine reads untrusted files (engine.files.read_bounded):
    opened without blocking (a FIFO cannot hang it), a regular file (not /dev/zero, not a folder) of
    bounded size, all checked before a byte is read, and read with the memory the file needs."""
    try:
        return read_bounded(audio_path, MAX_AUDIO_BYTES)
    except MemoryError:  # a file under the bound that this process's memory cannot hold (a 2 GiB WAV under a cap)
        raise TrainerError(f"cannot read audio {audio_path}: its {os.path.getsize(audio_path)} bytes do not fit in "
                           "memory; split the recording into clips") from None
    except OSError as err:
        raise TrainerError(f"cannot read audio {audio_path}: {err.strerror}") from err
    except RefusedFile as err:
        raise TrainerError(f"cannot read audio {audio_path}: {err}") from None


def read_audio(audio_path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """An audio file as float32 mono 16 kHz: `read_audio_bytes` then `load_audio`, errors naming the file."""
    return load_audio(read_audio_bytes(audio_path), str(audio_path), sample_rate)


def audio_key(data: bytes) -> str:
    """The cache key of an audio file: the sha1 of its bytes."""
    return hashlib.sha1(data).hexdigest()


_KEYS: dict[tuple[str, int, int], str] = {}  # (real path, size, mtime in ns) -> audio_key, for this process


def file_key(audio_path: str | Path) -> str:
    """The audio_key of a file, hashed once per process while the file stays as it was (its size and
    modification time): loading the data hashes every clip to find copies, and the feature cache
    then finds a clip's entry without reading the file again."""
    try:
        stat = os.stat(audio_path)
    except OSError as err:
        raise TrainerError(f"cannot read audio {audio_path}: {err.strerror}") from err
    identity = (os.path.realpath(audio_path), stat.st_size, stat.st_mtime_ns)
    if identity not in _KEYS:
        _KEYS[identity] = audio_key(read_audio_bytes(audio_path))
    return _KEYS[identity]


def without_copied_audio(utts: list[Utterance]) -> list[Utterance]:
    """The clips with each recording once, found by its bytes whatever its path: a corpus copied into
    another folder has new speaker ids (a speaker id holds its manifest's folder), so its clips
    would land in other splits than their originals, and a test score would be a score on training
    audio. A copy with the same labels is dropped with one warning; one with other labels cannot be
    resolved by guessing: an error naming both files."""
    first: dict[str, Utterance] = {}
    kept, copies = [], []
    for u in utts:
        original = first.setdefault(file_key(u.path), u)
        if original is u:
            kept.append(u)
        elif same_labels(original, u, ignore=("path", "speaker", "split")):
            copies.append((u.path, original.path))
        else:
            raise TrainerError(f"{u.path} holds the same audio as {original.path} with other labels; keep one of them")
    if copies:
        log.warning("dropped %d clip(s) whose audio is a copy of another clip's, which would be learned and "
                    "tested at once (the first: %s, the same bytes as %s)", len(copies), *copies[0])
    return kept


class AugmentedView:
    """Augmented view `view` (1, 2, ...) of an audio file: its cache key and, on demand, its samples.

    The chain is drawn from the clip's audio, or from `session` (a speaker id) so that all of a
    session's clips share it (augment.py). Real background noise comes from the clip's own pauses
    (its room and microphone, at another SNR), so a view depends on nothing but the clip, its
    session, the view number and the chain's options: the key holds them all, and a view is the
    same in every data set and for every feature source (front end or pretrained encoder)."""

    def __init__(self, audio_path: str | Path, view: int, aug: AugmentConfig, session: str | None = None) -> None:
        self.path, self.view, self.aug, self.session = audio_path, view, aug, session
        self.data = read_audio_bytes(audio_path)
        self.source = audio_key(self.data)
        self.key = f"{self.source}.view{view}.{aug.digest()}"
        if session is not None:
            self.key += ".session-" + hashlib.sha1(session.encode("utf-8", "surrogateescape")).hexdigest()[:12]

    def samples(self, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """The view's audio: the file decoded as training reads it, through its chain."""
        samples = load_audio(self.data, str(self.path), sample_rate)
        rng = view_rng(self.source if self.session is None else f"session:{self.session}", self.view, self.aug)
        return augment(samples, rng, self.aug, NoiseBank([samples]))


class ArrayStore:
    """A directory of `<key>.npy` arrays; `describe` (JSON) is written beside them for people.

    An entry that does not load as a finite 2-D float32 array (a disk error, a hand edit, a file
    from another program) is reported by name, removed and treated as missing, so the caller
    computes it again instead of training on garbage or stopping with a numpy traceback.
    """

    def __init__(self, path: str | Path, describe: dict, width: int | None = None) -> None:
        """`width`: the columns every entry has, where known (the front end's features): an entry of
        another width crashed training with an IndexError. The folder is made with the first entry:
        a run that failed before one (a pretrained model that did not load) left an empty folder. The
        commands check the cache root can be written before any work (commands.writable_folder)."""
        self.dir, self.width, self._describe, self._made = Path(path), width, describe, False

    def _make_folder(self) -> None:
        if self._made:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TrainerError(f"cannot make the cache folder {self.dir}: {err.strerror or err}") from None
        # by rename, as every entry: write_text followed a link there and, on a full disk, was a traceback
        note = (json.dumps(self._describe, indent=2) + "\n").encode()
        replace_whole(self.dir / "about.json", note, "the cache's note")
        self._made = True

    def get(self, key: str) -> np.ndarray | None:
        """The entry, or None when it is missing or was corrupt (and is now removed)."""
        entry = self.dir / f"{key}.npy"
        if not entry.is_file():
            return None
        try:
            array = np.load(entry, allow_pickle=False)
            problem = None if array.ndim == 2 and array.dtype == np.float32 and np.isfinite(array).all() \
                and self.width in (None, array.shape[1]) \
                else f"a {array.dtype} array of shape {array.shape}, not finite 2-D float32" + \
                ("" if self.width is None else f" of {self.width} columns")
        except (OSError, ValueError, EOFError) as err:  # what np.load raises for a truncated or foreign file
            problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        if problem is None:
            return array
        log.warning("cache entry %s is corrupt (%s): removed, computing it again", entry, problem)
        entry.unlink(missing_ok=True)
        return None

    def put(self, key: str, array: np.ndarray) -> None:
        self._make_folder()
        data = io.BytesIO()
        np.save(data, array, allow_pickle=False)
        replace_whole(self.dir / f"{key}.npy", data.getvalue(), "the cache entry")


class FeatureCache:
    """Features of audio files under `root/<config digest>/<audio sha1>.npy`."""

    def __init__(self, root: str | Path, cfg: FrontEndConfig | None = None) -> None:
        self.cfg = cfg or FrontEndConfig()
        self.store = ArrayStore(Path(root) / self.cfg.digest(), self.cfg.to_dict(), width=self.cfg.num_features)
        self.dir = self.store.dir
        # log mel columns come first; a model makes them gain-invariant (StudentModel.remove_gain)
        self.gain_dims = self.cfg.fbank.num_mel_bins

    def features(self, audio_path: str | Path, key: str | None = None) -> np.ndarray:
        """[N, num_features] float32 for one file, computed on first use. `key`: the file's
        audio_key if the caller has it, else file_key's (a file hashed before is not read again)."""
        key = key or file_key(audio_path)
        cached = self.store.get(key)
        if cached is not None:
            return cached
        data = read_audio_bytes(audio_path)
        try:
            feats = compute(load_audio(data, str(audio_path), self.cfg.sample_rate), self.cfg)
        except ValueError as err:  # the reason without the path again ("X: X: the audio contains no samples")
            reason = str(err).removeprefix(f"{audio_path}: ").replace(str(audio_path), "it")
            raise TrainerError(f"cannot compute features of {audio_path}: {reason}; leave its row out of the data"
                               ) from err
        if not len(feats):  # a model would still give it an estimate, from no speech at all
            raise TrainerError(f"cannot compute features of {audio_path}: {NO_FRAME}; leave its row out of the data")
        self.store.put(key, feats)
        return feats

    def features_for(self, utts: Iterable[Utterance], progress: bool = True,
                     keys: list[str] | None = None) -> list[np.ndarray]:
        """Features of every utterance in order, with a progress bar (`keys`: their audio_keys, if known)."""
        utts = list(utts)
        keys = keys or [None] * len(utts)
        return [self.features(u.path, k) for u, k in
                zip(tqdm(utts, desc="features", unit="file", disable=bar_disabled(progress)), keys)]

    def view(self, audio_path: str | Path, view: int, aug: AugmentConfig, session: str | None = None) -> np.ndarray:
        """Features of augmented view `view` (1, 2, ...) of a file (`AugmentedView`), computed on first use."""
        augmented = AugmentedView(audio_path, view, aug, session)
        cached = self.store.get(augmented.key)
        if cached is not None:
            return cached
        feats = compute(augmented.samples(self.cfg.sample_rate), self.cfg)
        self.store.put(augmented.key, feats)
        return feats

    def views_for(self, utts: Iterable[Utterance], n_views: int, aug: AugmentConfig,
                  progress: bool = True, per_session: bool = False) -> list[list[np.ndarray]]:
        """`n_views` augmented views of every utterance: views[v][i]; `per_session`: one chain per
        speaker and view."""
        utts = list(utts)
        return [[self.view(u.path, v, aug, u.speaker if per_session else None)
                 for u in tqdm(utts, desc=f"view {v}", unit="file", disable=bar_disabled(progress))]
                for v in range(1, n_views + 1)]


def feature_stats(features: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over all frames (float64 sums): the model's input normalisation."""
    count, total, squares = 0, 0.0, 0.0
    for f in features:
        f64 = f.astype(np.float64)
        count += len(f64)
        total = total + f64.sum(0)
        squares = squares + (f64**2).sum(0)
    if count == 0:
        raise TrainerError("no frames to compute normalisation statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)
