"""The built-in teacher: pretrained-encoder embeddings (Whisper base; wav2vec 2.0 / HuBERT) fused
into a GRU/TCGRU (paper 3.2, Table 3).

Import-light: its names are imported on first use, so listing the models (`emolive models`, which
reads `summary.default_summary`) never imports torch.
"""
from importlib import import_module

_NAMES = {
    "load_teacher_bundle": "bundle", "save_teacher_bundle": "bundle",
    "SSLEncoder": "encoder", "default_device": "encoder", "fuse": "frames", "num_frames": "frames",
    "TeacherPlugin": "plugin", "load_default": "plugin", "load_teacher": "plugin",
    "PRETRAINED": "pretrained", "MissingWeightsError": "pretrained", "Pretrained": "pretrained",
    "Stream": "pretrained", "load_pretrained": "pretrained", "get_pretrained": "pretrained",
    "parse_stream": "pretrained", "read_checkpoint": "pretrained",
    "DEFAULT_BUNDLE": "summary",
}


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_NAMES)
