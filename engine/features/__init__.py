"""Streaming MFB+F0 front end (40 log mel energies + log F0, delta log F0, voicing probability)."""
from .config import FbankConfig, FrontEndConfig, PitchConfig
from .frontend import FrontEnd, check_samples, compute

NUM_FEATURES = FrontEndConfig().num_features

__all__ = ["FbankConfig", "FrontEnd", "FrontEndConfig", "PitchConfig", "check_samples", "compute",
           "NUM_FEATURES"]
