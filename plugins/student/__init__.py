"""The built-in student: small GRU/TCGRU emotion models on the 43-dim MFB+F0 front end.

Import-light: the engine's entry points (`load_default`, `load_student`) run on onnxruntime, and
the torch side (modules, bundle writing, the torch plugin) is imported on first use of its names,
so `emolive stream` never imports torch.
"""
from importlib import import_module

from emolive.plugins.student.plugin import DEFAULT_BUNDLE, StudentPlugin, load_default, load_student

_TORCH_NAMES = {
    "ARCHITECTURES": "model", "GRUModel": "model", "StudentModel": "model", "TCGRUModel": "model",
    "length_mask": "model", "build_model": "bundle", "load_bundle": "bundle", "save_bundle": "bundle",
    "write_graph": "bundle", "TorchStudentPlugin": "torch_plugin", "load_default_torch": "torch_plugin",
}


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        return getattr(import_module(f"{__name__}.{_TORCH_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_BUNDLE", "StudentPlugin", "load_default", "load_student", *_TORCH_NAMES]
