"""The built-in student: small GRU/TCGRU emotion models on the 43-dim MFB+F0 front end."""
from plugins.student.bundle import load_bundle, save_bundle
from plugins.student.model import ARCHITECTURES, GRUModel, StudentModel, TCGRUModel, length_mask

__all__ = ["ARCHITECTURES", "GRUModel", "StudentModel", "TCGRUModel", "length_mask", "load_bundle", "save_bundle"]
