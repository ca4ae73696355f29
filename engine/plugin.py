"""What the engine needs from a model, and how a model is found by name or path.

A model plugin is anything with this small interface: the front end it was trained on, its
class names, and `predict` on one window. Plugins are found through entry points, so a
third-party package can add one without touching emolive:

- group `emolive.models`: a name (`student`, `teacher`) -> a callable returning a plugin;
- group `emolive.architectures`: a bundle's `architecture` field -> a callable(path) returning
  a plugin, which is how a bundle path is loaded without the engine importing any model code;
- group `emolive.model_summaries` (optional): a model's name -> a callable returning its
  `ModelSummary` from its bundle's config, so `emolive models` lists it without loading weights
  (a teacher's encoder costs seconds and hundreds of MB); a model without one is loaded to list it.
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from emolive.engine.errors import EmoliveError

if TYPE_CHECKING:  # import-light: `emolive --help` lists the models without loading numpy
    import numpy as np

    from emolive.engine.bundle import BundleMeta

log = logging.getLogger(__name__)

MODELS_GROUP = "emolive.models"
ARCHITECTURES_GROUP = "emolive.architectures"
SUMMARIES_GROUP = "emolive.model_summaries"


@dataclass(frozen=True)
class Prediction:
    """One window's estimate: A/V/D on the 1-7 scale, class probabilities, utterance embedding."""

    avd: np.ndarray  # float32[3]: activation, valence, dominance
    class_probs: np.ndarray  # float32[C], in the order of the plugin's class_names
    embedding: np.ndarray  # float32[E]


@runtime_checkable
class ModelPlugin(Protocol):
    """The engine's view of a model (a student bundle, a teacher, or a third-party model)."""

    name: str
    meta: BundleMeta
    device: str

    def predict(self, features: np.ndarray, samples: np.ndarray) -> Prediction:
        """One window: front-end features [T, D] and the same span's 16 kHz samples."""

    def predict_batch(self, features: list[np.ndarray], samples: list[np.ndarray]) -> list[Prediction]:
        """Many windows or utterances at once (evaluation, offline runs)."""

    def size_bytes(self) -> int:
        """Bytes of stored weights (what a user downloads or ships)."""


class ModelError(EmoliveError):
    """A model that failed while predicting, or gave what no consumer can use (a third party's plugin,
    a hostile graph): one line naming it, where a traceback, a NaN row or a message emolive's own
    readers reject had come out."""


# float32 probabilities sum within ~1e-6 of 1; 1e-3 only catches outputs that are no distribution
PROBABILITY_SUM_TOLERANCE = 1e-3
# how far past the 1-7 scale an A/V/D may come, and be clipped: float32 rounding of a bounded head
# (4 + 3 tanh) stays within 1e-6; more is a model on another scale
SCALE_TOLERANCE = 1e-3


def predict_checked(plugin: ModelPlugin, features: list[np.ndarray], samples: list[np.ndarray]) -> list[Prediction]:
    """`plugin.predict_batch`, held to the contract every consumer relies on: one Prediction per input,
    in order; A/V/D three finite numbers on the 1-7 scale; one probability in [0, 1] per class name,
    summing to 1 (or none, for a model without a class head); a finite embedding. Values come back as
    float32 arrays, whatever sequence the plugin gave. A plugin's own exception is a ModelError naming it and it
    (an EmoliveError it raises stays as it is); `-v` logs the traceback for the plugin's author."""
    import numpy as np

    from emolive.engine.schema import SCALE, printable

    name = printable(str(getattr(plugin, "name", "?")), 80)
    try:
        given = list(plugin.predict_batch(features, samples))
    except EmoliveError:
        raise
    except (Exception, SystemExit) as exc:  # a plugin's sys.exit() left analyze() as SystemExit
        log.debug("model %s failed", name, exc_info=True)
        raise ModelError(f"model {name} failed: {type(exc).__name__}: {printable(str(exc), 300)}") from None
    if len(given) != len(features):
        raise ModelError(f"model {name} gave {len(given)} predictions for {len(features)} windows")
    classes = len(plugin.meta.class_names)
    checked = []
    for prediction in given:
        try:
            raw = [np.asarray(getattr(prediction, field)) for field in ("avd", "class_probs", "embedding")]
        except (AttributeError, TypeError, ValueError) as exc:
            raise ModelError(f"model {name} gave no Prediction(avd, class_probs, embedding) of numbers: "
                             f"{type(exc).__name__}: {printable(str(exc), 200)}") from None
        if any(values.dtype.kind not in "iuf" for values in raw):  # numpy reads '4' and True as numbers
            raise ModelError(f"model {name} gave a Prediction of {', '.join(str(v.dtype) for v in raw)} values, "
                             "not real numbers")
        with np.errstate(over="ignore"):  # beyond float32: infinite, refused below
            avd, probs, embedding = (values.astype(np.float32) for values in raw)
        if avd.shape != (3,) or probs.shape not in ((classes,), (0,)) or embedding.ndim != 1:
            raise ModelError(f"model {name} gave avd of shape {avd.shape} (want 3), class_probs of shape {probs.shape} "
                             f"(want {classes}, one per class name, or none) and an embedding of shape "
                             f"{embedding.shape} (want one axis)")
        if not (np.isfinite(avd).all() and np.isfinite(probs).all() and np.isfinite(embedding).all()):
            raise ModelError(f"model {name} gave NaN or infinite outputs")
        if (avd < SCALE[0] - SCALE_TOLERANCE).any() or (avd > SCALE[1] + SCALE_TOLERANCE).any():
            given = ", ".join(f"{v:.4g}" for v in avd)
            raise ModelError(f"model {name} gave activation, valence and dominance {given}: outside emolive's "
                             f"{SCALE[0]:g}-{SCALE[1]:g} scale (they were clipped to it without a word)")
        if len(probs) and ((probs < 0).any() or (probs > 1).any()
                           or abs(float(probs.sum()) - 1.0) > PROBABILITY_SUM_TOLERANCE):
            raise ModelError(f"model {name} gave class probabilities outside [0, 1] or not summing to 1 "
                             f"({', '.join(f'{v:.3g}' for v in probs[:8])})")
        checked.append(Prediction(avd, probs, embedding))
    return checked


def reads_samples(plugin: ModelPlugin) -> bool:
    """Whether `plugin` reads the samples `predict` is given. A model of front-end features alone says
    so with a class attribute `reads_samples = False`: the runner's buffers then keep no samples for
    it, and `trainer evaluate` decodes no audio for it (a fifth of its time on ASED); both hand it
    empty arrays. Without the attribute a plugin gets the samples, as every plugin did before."""
    return bool(getattr(plugin, "reads_samples", True))


@dataclass(frozen=True)
class ModelSummary:
    """A model as `emolive models` lists it."""

    size_bytes: int  # its own stored weights
    input: str  # what the network reads, e.g. "43-dim MFB+F0, 50 frames/s, 16 kHz"
    device: str
    architecture: str
    n_classes: int
    pretrained: str = ""  # a pretrained encoder it needs beside its weights (installed apart), if any

    @classmethod
    def of_meta(cls, meta: BundleMeta, size_bytes: int, device: str, features: str | None = None,
                pretrained: str = "") -> ModelSummary:
        """From a bundle's metadata; `features` names what the network reads when it is not the
        front end's MFB+F0 (a teacher's embedding streams)."""
        cfg = meta.frontend
        features = features or f"{cfg.num_features}-dim MFB+F0"
        return cls(size_bytes, f"{features}, {cfg.sample_rate / cfg.frame_shift:g} frames/s, "
                   f"{cfg.sample_rate / 1000:g} kHz", device, meta.architecture, len(meta.class_names), pretrained)


def bundle_summary(path: Path, device: str = "cpu",
                   reads: Callable[[BundleMeta], tuple[str, str]] | None = None) -> ModelSummary:
    """The summary of the bundle at `path`, from its config.json and its weights file's size alone;
    `reads(meta)` gives (what the network reads, the pretrained encoder it needs) where that is not
    the front end's MFB+F0 (a teacher)."""
    from emolive.engine.bundle import WEIGHTS_FILE, parse_config, read_config

    meta, _ = parse_config(read_config(path), path)
    features, pretrained = reads(meta) if reads is not None else (None, "")
    return ModelSummary.of_meta(meta, (path / WEIGHTS_FILE).stat().st_size, device, features, pretrained)


def summarise(name: str) -> ModelSummary:
    """A registered model's summary: from its summary entry point when it has one (the package's that
    registered the model: registered_models), else loaded."""
    model = registered_models().get(name)
    summaries = [ep for ep in entry_points(group=SUMMARIES_GROUP) if ep.name == name
                 and (model is None or _distribution(ep) == _distribution(model))]
    if summaries:
        from emolive.engine.bundle import BundleError

        try:
            summary = summaries[0].load()()
        except EmoliveError:
            raise
        except (Exception, SystemExit) as exc:  # as a loader's: the listing goes on to the others
            raise BundleError(f"model {name}'s summary failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(summary, ModelSummary):  # its use was an AttributeError that ended the listing
            raise BundleError(f"model {name}'s summary gave a {type(summary).__name__}, not an "
                              "emolive.engine.plugin.ModelSummary")
        return summary
    plugin = load_model(name)
    return ModelSummary.of_meta(plugin.meta, plugin.size_bytes(), plugin.device, getattr(plugin, "input_features", None))


def registered_models() -> dict[str, EntryPoint]:
    """The model names of `emolive models`: each installed package's `emolive.models` entry points."""
    return _registered(MODELS_GROUP, "model name")


@functools.cache
def _registered(group: str, what: str) -> dict[str, EntryPoint]:
    """Once per process: each scan reads every installed package's metadata (~0.1 s here), and a
    parser with several --model options would pay it for each. A name two packages register goes to
    emolive's own (else to the first package by name), with a warning: which one loaded hung on the
    order of the packages on the path, and `emolive models` described the other; a package that
    registered the architecture `tcgru` took every student bundle path."""
    chosen: dict[str, EntryPoint] = {}
    for ep in sorted(entry_points(group=group), key=lambda ep: (ep.name, _distribution(ep) != "emolive",
                                                                _distribution(ep))):
        if ep.name not in chosen:
            chosen[ep.name] = ep
        elif ep.value != chosen[ep.name].value:
            log.warning("%s %r is registered by %s and by %s: %s's is used; rename the other", what, ep.name,
                        _distribution(chosen[ep.name]), _distribution(ep), _distribution(chosen[ep.name]))
    return chosen


def _distribution(ep: EntryPoint) -> str:
    """The name of the package that registered `ep` ("" where the entry point has none)."""
    return ep.dist.name if ep.dist is not None else ""


def check_model_exists(spec: str) -> None:
    """`spec` names an installed plugin or an existing path, else load_model's error: a caller
    that loads the model only after minutes of work can refuse a mistyped name at once."""
    from emolive.engine.bundle import BundleError

    named = registered_models()
    if spec not in named and not Path(spec).exists():
        raise BundleError(f"no model named {spec!r} and no bundle at that path; "
                          f"known models: {', '.join(sorted(named)) or 'none'}")


def load_model(spec: str | os.PathLike[str]) -> ModelPlugin:
    """A plugin name from `emolive models`, or a path to a model bundle directory. A name wins over
    a folder of that name here, and says so: ./student is another model than `student`."""
    if not isinstance(spec, (str, os.PathLike)) or not os.fspath(spec):  # "" was the current folder as a bundle
        raise EmoliveError(f"model {spec!r}: give a name from `emolive models` or a bundle path")
    spec = os.fspath(spec)
    named = registered_models()
    if spec in named:
        if os.path.isdir(spec):
            log.warning("model %r is the installed one; for the folder %s here give its path (./%s)", spec, spec, spec)
        return _with_dependencies(spec, lambda: named[spec].load()())
    check_model_exists(spec)
    # named as given: Path() dropped "./", and ./student's estimates went out as the installed `student`'s
    return load_bundle_plugin(Path(spec), name=spec)


def load_bundle_plugin(path: Path, name: str | None = None) -> ModelPlugin:
    """Load a bundle with the plugin that registered its architecture."""
    from emolive.engine.bundle import CONFIG_FILE, BundleError, read_config

    arch = read_config(path).get("architecture")
    if not isinstance(arch, str):
        raise BundleError(f"{path / CONFIG_FILE}: 'architecture' must be a string naming the model's plugin")
    loaders = _registered(ARCHITECTURES_GROUP, "architecture")
    if arch not in loaders:
        raise BundleError(f"{path}: no installed plugin loads architecture {arch!r} "
                          f"(known: {', '.join(sorted(loaders))})")
    return _with_dependencies(str(path), lambda: loaders[arch].load()(path, name=name))


# a package a model plugin may need that the no-extras install leaves out -> the extra that brings it
EXTRA_FOR = {"torch": "train", "torchaudio": "train", "onnx": "teacher"}


def _with_dependencies(what: str, load: Callable[[], ModelPlugin]) -> ModelPlugin:
    """`load()`, with a missing optional package said in one line naming the extra that installs it.
    Any other failure of a plugin's own code (a third party's module gone, its loader raising, an
    object returned that is no model) is one line naming the model, as `emolive models` says it;
    `-v` logs the traceback for the plugin's author."""
    from emolive.engine.bundle import BundleError

    try:
        plugin = load()
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in EXTRA_FOR:
            raise _missing_extra(what, missing) from None
        log.debug("loading model %s", what, exc_info=True)
        raise BundleError(f"model {what} could not be loaded: {type(exc).__name__}: {exc}") from None
    except EmoliveError:
        raise
    except (Exception, SystemExit) as exc:  # a loader's sys.exit() had ended `emolive models` at that plugin
        log.debug("loading model %s", what, exc_info=True)
        raise BundleError(f"model {what} could not be loaded: {type(exc).__name__}: {exc}") from None
    return check_plugin(plugin, what)


def check_plugin(plugin: object, what: str) -> ModelPlugin:
    """`plugin` has the interface the engine uses, its meta a BundleMeta (None passed the protocol and
    failed at the first use); a BundleError naming `what` otherwise. Loaded plugins and the objects a
    program hands to emolive.analyze/stream alike."""
    from emolive.engine.bundle import BundleError, BundleMeta, check_class_names, check_label_scale
    from emolive.engine.features import FrontEndConfig

    if not isinstance(plugin, ModelPlugin):
        raise BundleError(f"model {what}'s plugin gave a {type(plugin).__name__}, not a model (name, meta, device, "
                          "predict, predict_batch, size_bytes)")
    if not isinstance(plugin.name, str) or not plugin.name:  # every output's `model` field; an int was a traceback
        raise BundleError(f"model {what}'s plugin has name {plugin.name!r}: give a non-empty string")
    if not isinstance(plugin.meta, BundleMeta):
        raise BundleError(f"model {what}'s plugin has meta {type(plugin.meta).__name__}, not an "
                          "emolive.engine.bundle.BundleMeta (its front end and class names)")
    if not isinstance(plugin.meta.frontend, FrontEndConfig):
        raise BundleError(f"model {what}'s plugin has meta.frontend {type(plugin.meta.frontend).__name__}, not an "
                          "emolive.engine.features.FrontEndConfig")
    # a bundle's own rules: duplicate names lost a probability, a 0-1 scale was clipped to 1 without a word
    check_class_names(plugin.meta.class_names, f"model {what}'s plugin")
    check_label_scale(plugin.meta.label_scale, f"model {what}'s plugin")
    check_sample_rate(plugin)
    return plugin


def check_sample_rate(plugin: ModelPlugin) -> None:
    """The model's front end reads what every source delivers, 16 kHz: said as it loads, where `score`
    had first refused the default --hop as no multiple of an 8 kHz model's frame shift."""
    from emolive.engine.bundle import BundleError
    from emolive.engine.sources.base import SAMPLE_RATE

    if plugin.meta.frontend.sample_rate != SAMPLE_RATE:
        raise BundleError(f"model {plugin.name} was trained on a {plugin.meta.frontend.sample_rate} Hz front end; "
                          f"emolive's sources deliver {SAMPLE_RATE} Hz")


def require_package(package: str, what: str) -> None:
    """For a summary, which imports nothing heavy: the error loading model `what` would give if
    `package` (a key of EXTRA_FOR) is not installed."""
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise _missing_extra(what, package)


def _missing_extra(what: str, package: str) -> Exception:
    from emolive.engine.bundle import BundleError

    return BundleError(f"model {what} needs {package}, which emolive's base install leaves out: "
                       f"pip install 'emolive[{EXTRA_FOR[package]}]'")
