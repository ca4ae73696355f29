"""Evaluate any model plugin (student, teacher, bundle path) on labelled utterances."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emolive.engine.console import bar_disabled
from emolive.engine.plugin import ModelPlugin, predict_checked, reads_samples
from emolive.engine.windows import NO_SAMPLES, covered_end
from emolive.trainer.data import FeatureCache, Utterance
from emolive.trainer.data.cache import read_audio
from emolive.trainer.metrics import DIMENSIONS, ccc, speaker_bootstrap
from emolive.trainer.labelled import IGNORE, clip_names, score_predictions, session_features
from emolive.trainer.sessions import DEFAULT_PROTOCOL, session_streams

log = logging.getLogger(__name__)
_SAID_SILENT: set[Path] = set()  # clips said to be silent in this process (warn_silent)


def predict_utterances(plugin: ModelPlugin, utts: list[Utterance], cache_root, batch_size: int = 64,
                       progress: bool = True, keys: list[str] | None = None,
                       protocol: str = DEFAULT_PROTOCOL) -> dict[str, np.ndarray]:
    """Whole-utterance predictions: avd [N,3], class_probs [N,C], embedding [N,E].

    A model with stream normalisation hears the clips as live sessions grouped by `protocol`
    (trainer.sessions: each clip alone, a speaker's clips of one state, or all of a speaker's),
    a session's clips in a seeded random order (trainer.labelled.session_features), as `emolive
    stream` would if they were said one after another. `keys`: the files' audio_keys if the
    caller hashed them. A model that reads samples hears those the clip's frames cover, as the
    engine's whole-recording pass hands them (the last few ms after the last frame moved a Whisper
    teacher's valence by up to 0.17); a clip over the engine's 5-minute piece is one pass here.
    """
    cache = FeatureCache(cache_root, plugin.meta.frontend)
    rate = plugin.meta.frontend.sample_rate
    feats = cache.features_for(utts, progress=False, keys=keys)
    warn_silent(utts, feats, plugin.meta.frontend.fbank.num_mel_bins)
    feats = session_features(feats, session_streams(utts, protocol), plugin.meta.stream_normalisation,
                             clip_names(utts))
    preds, decode = [], reads_samples(plugin)
    for i in tqdm(range(0, len(utts), batch_size), desc="evaluate", unit="batch", disable=bar_disabled(progress)):
        chunk = utts[i:i + batch_size]
        audio = [read_audio(u.path, rate)[:covered_end(len(f), plugin.meta.frontend)] if decode else NO_SAMPLES
                 for u, f in zip(chunk, feats[i:i + batch_size])]
        preds += predict_checked(plugin, feats[i:i + batch_size], audio)
    return {
        "avd": np.stack([p.avd for p in preds]),
        "class_probs": np.stack([p.class_probs for p in preds]),
        "embedding": np.stack([p.embedding for p in preds]),
    }


def warn_silent(utts: list[Utterance], feats: list[np.ndarray], mel_bins: int) -> None:
    """Clips of digital silence (every log-mel value the floor) are scored as any clip, but said: an estimate
    of no sound says nothing of a voice (`emolive score` marks such a file speech=False), and three among
    a hundred had been scored into the CCC without a word. Once per process, as manifests' unknown words
    are: a report's models, a distillation's teachers, each predict the same clips."""
    silent = [u for u, f in zip(utts, feats) if np.ptp(f[:, :mel_bins]) == 0 and u.path not in _SAID_SILENT]
    _SAID_SILENT.update(u.path for u in silent)
    if silent:
        log.warning("%d of %d clips hold digital silence only (e.g. %s): they are scored, but their estimates say "
                    "nothing of a voice; leave their rows out of the data", len(silent), len(utts), silent[0].path)


def metrics(plugin: ModelPlugin, utts: list[Utterance], out: dict[str, np.ndarray]) -> dict:
    """CCC per dimension on the utterances labelled in it (None where not measurable: too few
    labels, or all equal), with a 95 % interval over speakers (trainer.metrics.speaker_bootstrap);
    UAR on those whose emotion the class head knows. Scored by trainer.labelled.score_predictions."""
    target = np.array([u.avd for u in utts], dtype=np.float64).reshape(-1, 3)
    scored = score_predictions(out["avd"], target, out["class_probs"], class_indices(plugin, utts))
    # every key in every result, null where not measurable: a key left out broke readers of --json
    result = {"ccc": {d: (None if np.isnan(v) else float(v)) for d, v in zip(DIMENSIONS, scored["ccc"])}, "uar": None,
              "n": len(utts), "n_labelled": {d: int(np.isfinite(target[:, k]).sum()) for k, d in enumerate(DIMENSIONS)},
              "n_classified": 0, "ccc_ci95": dict.fromkeys(DIMENSIONS)}
    if "uar" in scored:
        result["uar"], result["n_classified"] = scored["uar"], scored["n_classified"]
    if len({u.speaker for u in utts}) > 1:
        low, high = speaker_bootstrap(lambda rows: ccc(out["avd"][rows], target[rows]), [u.speaker for u in utts])
        result["ccc_ci95"] = {d: None if np.isnan(lo) or np.isnan(hi) else [float(lo), float(hi)]
                              for d, lo, hi in zip(DIMENSIONS, low, high)}
    return result


def warn_narrowband(plugin: ModelPlugin, utts: list[Utterance]) -> None:
    """The engine's warning for audio recorded below 16 kHz (engine.narrowband), once for the data with the
    count of such clips: `emolive score` gave it for 8 kHz clips that `trainer evaluate` scored in silence.
    Rates come from the headers libsndfile reads; a file it cannot (MP3, M4A) is not counted."""
    import soundfile as sf

    from emolive.engine.narrowband import narrowband_note
    from emolive.engine.sources.base import SAMPLE_RATE

    def rate(u: Utterance) -> float | None:
        try:
            return float(sf.info(str(u.path)).samplerate)
        except (sf.LibsndfileError, RuntimeError, OSError):
            return None

    narrow = [(u, r) for u in utts if (r := rate(u)) is not None and r < SAMPLE_RATE]
    if narrow:
        first, at = narrow[0]
        log.warning("%s (%d of the %d clips are below 16 kHz)", narrowband_note(str(first.path), at, plugin),
                    len(narrow), len(utts))


def unmeasured(utts: list[Utterance], result: dict) -> dict[str, str]:
    """Why each dimension `result` has no CCC for has none (the table's "-", JSON's null had said nothing):
    fewer than two clips labelled in it, or all its labels equal (a corpus's only category)."""
    target = np.array([u.avd for u in utts], dtype=np.float64).reshape(-1, 3)
    reasons = {}
    for name, column in zip(DIMENSIONS, target.T):
        labels = column[np.isfinite(column)]
        if result["ccc"][name] is not None:
            continue
        if len(labels) < 2:
            reasons[name] = f"{len(labels)} of the {len(utts)} clips labelled in it" if len(labels) else "unlabelled"
        elif np.ptp(labels) == 0:
            reasons[name] = f"its {len(labels)} labels are all {labels[0]:.2f}"
    return reasons


def class_indices(plugin: ModelPlugin, utts: list[Utterance]) -> np.ndarray:
    """Each utterance's class index in the plugin's class head, IGNORE where the head lacks its emotion."""
    index = {c: i for i, c in enumerate(plugin.meta.class_names)}
    return np.array([index.get(u.emotion, IGNORE) for u in utts], dtype=np.int64)


def class_targets(plugin: ModelPlugin, utts: list[Utterance]) -> tuple[np.ndarray, np.ndarray]:
    """Which utterances' emotions the class head knows (bool [N]), and their class indices [known]."""
    indices = class_indices(plugin, utts)
    known = indices != IGNORE
    return known, indices[known]


def format_table(rows: list[tuple[str, str, dict]]) -> str:
    """Rows of (model, data, metrics) in the layout of the paper's Table 1; model names and data
    paths are shown whole (the columns widen to fit them)."""
    model_w = max([len("model"), *(len(model) for model, _, _ in rows)])
    data_w = max([len("data"), *(len(data) for _, data, _ in rows)])
    lines = [f"{'model':<{model_w}} {'data':<{data_w}} {'n':>6} {'act':>6} {'val':>6} {'dom':>6} {'UAR':>6}"]
    for model, data, m in rows:
        c = {d: "-" if v is None else f"{v:.3f}" for d, v in m["ccc"].items()}
        u = f"{m['uar']:.3f}" if m.get("uar") is not None else "-"
        lines.append(f"{model:<{model_w}} {data:<{data_w}} {m['n']:>6} {c['activation']:>6} "
                     f"{c['valence']:>6} {c['dominance']:>6} {u:>6}")
    return "\n".join(lines)
