"""SSL frame embeddings computed once per audio file and stream, kept on disk.

Entries live under `root/<model>-<architecture digest>-<weights>/layer<L>/<audio sha1>.npy`
(weights: `hub`, or the checkpoint's sha1), so a different model, layer, checkpoint or audio
file can never serve a stale entry. The pretrained model is only loaded when an entry is
missing: training on cached embeddings needs no pretrained weights at all.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from emolive.engine.console import bar_disabled
from emolive.engine.runner import NO_FRAME
from emolive.plugins.teacher import SSLEncoder, Stream, fuse
from emolive.plugins.teacher.pretrained import check_checkpoint_file, load_encoder
from emolive.plugins.teacher.whisper import WhisperFrameEncoder
from emolive.plugins.teacher.encoder import BATCH_SECONDS
from emolive.trainer.data import Utterance
from emolive.trainer.data.augment import AugmentConfig
from emolive.trainer.data.cache import ArrayStore, AugmentedView, audio_key, read_audio, read_audio_bytes
from emolive.trainer.errors import TrainerError

VIEW_BATCH = 16  # augmented files embedded per encoder call: batches an SSL encoder, bounds the audio held


def weights_id(stream: Stream) -> str:
    """`hub` for the bundle's published weights, else the first 12 hex of the checkpoint's sha1."""
    if stream.checkpoint is None:
        return "hub"
    check_checkpoint_file(Path(stream.checkpoint))
    digest = hashlib.sha1()
    with open(stream.checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


class EmbeddingCache:
    """One stream's embeddings of audio files, computed in batches on first use."""

    def __init__(self, root: str | Path, stream: Stream, device: str | None = None,
                 batch_seconds: float = BATCH_SECONDS) -> None:
        self.stream, self.device, self.batch_seconds = stream, device, batch_seconds
        spec = stream.spec
        model_dir = f"{spec.name}-{spec.architecture_digest()}-{weights_id(stream)}"
        self.store = ArrayStore(Path(root) / model_dir / f"layer{stream.layer}",
                                {"pipeline": spec.pipeline, **stream.to_dict()})
        self._encoder: SSLEncoder | WhisperFrameEncoder | None = None

    def encoder(self) -> SSLEncoder | WhisperFrameEncoder:
        """The pretrained model, loaded on first need."""
        if self._encoder is None:
            self._encoder = load_encoder(self.stream.spec, self.stream.checkpoint, self.device, self.batch_seconds)
        return self._encoder

    def missing(self, paths: Sequence[str | Path]) -> list[str | Path]:
        """The files without an entry."""
        return [p for p in paths if self.store.get(audio_key(read_audio_bytes(p))) is None]

    def embeddings(self, paths: Sequence[str | Path], progress: bool = True) -> list[np.ndarray]:
        """[num_frames, dim] float32 per file, in order; missing entries computed in batches."""
        keys = [audio_key(read_audio_bytes(p)) for p in paths]
        found = {k: self.store.get(k) for k in set(keys)}
        # one index per missing key: identical files are embedded once
        missing = sorted({k: i for i, k in enumerate(keys) if found[k] is None}.values())
        if missing:
            found.update(self._compute([paths[i] for i in missing], [keys[i] for i in missing], progress))
        # as the front end's features (trainer.data.cache): a teacher had learned clips it would never be asked
        # about, each one empty frame, where the student's training, `evaluate` and the engine refuse them
        empty = next((path for path, k in zip(paths, keys) if not len(found[k])), None)
        if empty is not None:
            raise TrainerError(f"cannot embed {empty}: {NO_FRAME}")
        return [found[k] for k in keys]

    def _compute(self, paths: list[str | Path], keys: list[str], progress: bool) -> dict[str, np.ndarray]:
        encoder = self.encoder()  # before the progress bar: missing weights fail on one clean line
        done = {}
        with tqdm(total=len(paths), desc=f"embed {self.stream.label()}", unit="file", disable=bar_disabled(progress)) as bar:
            for start in range(0, len(paths), 64):  # bounds the audio held in memory at once
                audio = [read_audio(p) for p in paths[start:start + 64]]
                for key, emb in zip(keys[start:start + 64], encoder.embed(audio, self.stream.layer)):
                    self.store.put(key, emb)
                    done[key] = emb
                bar.update(len(audio))
        return done


def encoder_groups(caches: Sequence[EmbeddingCache]) -> list[list[EmbeddingCache]]:
    """`caches` grouped by the pretrained model they read (its name and checkpoint), in order: each
    group's layers can come from one pass of its first cache's encoder."""
    groups: dict[tuple, list[EmbeddingCache]] = {}
    for cache in caches:
        groups.setdefault((cache.stream.model, cache.stream.checkpoint), []).append(cache)
    return list(groups.values())


def fill_layers(caches: Sequence[EmbeddingCache], paths: Sequence[str | Path], progress: bool = True) -> None:
    """Compute the missing entries of several layers of one model in one pass per file, where its
    encoder gives every layer at once (Whisper's `embed_layers`); other caches fill themselves on use."""
    keys = [audio_key(read_audio_bytes(p)) for p in paths]  # each file read and hashed once
    for group in encoder_groups(caches):
        first = {k: p for p, k in reversed(list(zip(paths, keys)))}  # one path per distinct file
        todo = [(p, k) for k, p in first.items() if any(c.store.get(k) is None for c in group)]
        if not todo:
            continue
        encoder = group[0].encoder()
        if not hasattr(encoder, "embed_layers"):
            continue
        label = ",".join(c.stream.label() for c in group)
        for path, key in tqdm(todo, desc=f"embed {label}", unit="file", disable=bar_disabled(progress)):
            for cache, emb in zip(group, encoder.embed_layers(read_audio(path),
                                                              [c.stream.layer for c in group])):
                cache.store.put(key, emb)


class EmbeddingFeatures:
    """A feature source for training: streams fused frame by frame, with `FeatureCache`'s interface."""

    def __init__(self, root: str | Path, streams: Sequence[Stream], device: str | None = None,
                 batch_seconds: float = BATCH_SECONDS) -> None:
        if not streams:
            raise TrainerError("give at least one embedding stream")
        self.streams = list(streams)
        self.caches = [EmbeddingCache(root, s, device, batch_seconds) for s in self.streams]
        self.gain_dims = 0  # embeddings carry no microphone gain to remove

    @property
    def dim(self) -> int:
        return sum(s.spec.dim for s in self.streams)

    def features_for(self, utts: Iterable[Utterance], progress: bool = True) -> list[np.ndarray]:
        paths = [u.path for u in utts]
        per_stream = [cache.embeddings(paths, progress) for cache in self.caches]
        return [fuse(parts) for parts in zip(*per_stream)]

    def views_for(self, utts: Iterable[Utterance], n_views: int, aug: AugmentConfig,
                  progress: bool = True, per_session: bool = False) -> list[list[np.ndarray]]:
        """`n_views` augmented views of every utterance, views[v][i], fused as `features_for` fuses:
        the very chains FeatureCache.views_for draws (AugmentedView), so a teacher and its student
        can hear the same rooms and microphones. A view's missing layers come from one pass of each
        encoder over its audio, in batches of `VIEW_BATCH` files."""
        utts = list(utts)
        views = []
        for v in range(1, n_views + 1):
            augmented = [AugmentedView(u.path, v, aug, u.speaker if per_session else None) for u in utts]
            parts = {id(c): [c.store.get(a.key) for a in augmented] for c in self.caches}
            todo = [i for i in range(len(utts)) if any(found[i] is None for found in parts.values())]
            with tqdm(total=len(todo), desc=f"embed view {v}", unit="file", disable=bar_disabled(progress)) as bar:
                for start in range(0, len(todo), VIEW_BATCH):
                    batch = todo[start:start + VIEW_BATCH]
                    audio = [augmented[i].samples() for i in batch]
                    for group in encoder_groups(self.caches):
                        layers = group[0].encoder().embed_all(audio, [c.stream.layer for c in group])
                        for cache, per_wave in zip(group, layers):
                            for i, emb in zip(batch, per_wave):
                                cache.store.put(augmented[i].key, emb)
                                parts[id(cache)][i] = emb
                    bar.update(len(batch))
            views.append([fuse(clip) for clip in zip(*(parts[id(c)] for c in self.caches))])
        return views
