"""The built-in student: small GRU/TCGRU emotion models on the 43-dim MFB+F0 front end."""
from emolive.plugins.student.bundle import build_model, load_bundle, save_bundle
from emolive.plugins.student.model import ARCHITECTURES, GRUModel, StudentModel, TCGRUModel, length_mask
from emolive.plugins.student.plugin import DEFAULT_BUNDLE, StudentPlugin, load_default, load_student

__all__ = ["ARCHITECTURES", "DEFAULT_BUNDLE", "build_model", "GRUModel", "StudentModel", "StudentPlugin", "TCGRUModel",
           "length_mask", "load_bundle", "load_default", "load_student", "save_bundle"]
