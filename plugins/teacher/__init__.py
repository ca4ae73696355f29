"""The built-in teacher: wav2vec 2.0 / HuBERT embeddings (paper 3.2) fused into a TCGRU (Table 3)."""
from emolive.plugins.teacher.bundle import load_teacher_bundle, save_teacher_bundle
from emolive.plugins.teacher.encoder import SSLEncoder, default_device, fuse, num_frames
from emolive.plugins.teacher.plugin import DEFAULT_BUNDLE, TeacherPlugin, load_default, load_teacher
from emolive.plugins.teacher.pretrained import (PRETRAINED, MissingWeightsError, Pretrained, Stream, load_pretrained,
                                        get_pretrained, parse_stream, read_checkpoint)

__all__ = ["DEFAULT_BUNDLE", "PRETRAINED", "MissingWeightsError", "Pretrained", "SSLEncoder", "Stream",
           "TeacherPlugin", "default_device", "fuse", "load_default", "load_pretrained", "load_teacher",
           "load_teacher_bundle", "num_frames", "get_pretrained", "parse_stream", "read_checkpoint",
           "save_teacher_bundle"]
