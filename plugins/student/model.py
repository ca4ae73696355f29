"""The student networks of Mitra et al. 2022, section 3.3: GRU and TCGRU with a multi-task head.

One definition serves training and live inference, so what is trained is exactly what runs.
The input normalisation (per-feature mean and std of the training features) is a pair of
buffers, so it travels inside the model bundle instead of living in a side file.
"""
from __future__ import annotations

import torch
from torch import nn

from emolive.engine.bundle import FEATURE_STD_FLOOR
from emolive.engine.schema import SCALE
from emolive.plugins.student.spec import ARCHITECTURE_NAMES, GAIN_RANGE


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B] lengths -> [B, T] float mask, 1 on real frames and 0 on padding."""
    steps = torch.arange(max_len, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).float()


class StudentModel(nn.Module):
    """Normalise -> input layer -> 2-layer GRU -> masked mean pooling -> embedding -> heads.

    Regression outputs are `4 + 3 tanh(.)`: bounded to the 1-7 label scale, so a live estimate can
    never leave the scale the GUI and sinks expect, while CCC (which is sensitive to mean and
    spread) can still be fitted because the targets sit well inside the bounds.
    Padding needs no packing: a unidirectional GRU's outputs on real frames do not depend on the
    frames after them, and pooling ignores the padded ones (plain tensors also export to ONNX).
    """

    arch = "student"

    def __init__(
        self,
        input_dim: int,
        n_classes: int = 0,
        hidden: int = 128,
        layers: int = 2,
        embedding_dim: int = 128,
        gain_dims: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_dim, self.n_classes = input_dim, n_classes
        self.hidden, self.layers, self.embedding_dim = hidden, layers, embedding_dim
        self.gain_dims = gain_dims
        self.register_buffer("feature_mean", torch.zeros(input_dim))
        self.register_buffer("feature_std", torch.ones(input_dim))
        self.gru = nn.GRU(self.gru_input_dim(), hidden, num_layers=layers, batch_first=True)
        self.embedding = nn.Sequential(nn.Linear(hidden, embedding_dim), nn.ReLU())
        # training-only regularisation of what the heads read; no weights, so not a hyperparameter
        self.dropout = nn.Dropout(dropout)
        self.regression = nn.Linear(embedding_dim, 3)
        # No class head at all (not a 0-wide one) when multi-task is off: nothing to initialise or store.
        self.classifier = nn.Linear(embedding_dim, n_classes) if n_classes else None

    def gru_input_dim(self) -> int:
        return self.input_dim

    def input_layer(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def hyperparameters(self) -> dict:
        """The constructor arguments, as stored in a bundle's config.json."""
        return {
            "input_dim": self.input_dim,
            "n_classes": self.n_classes,
            "hidden": self.hidden,
            "layers": self.layers,
            "embedding_dim": self.embedding_dim,
            "gain_dims": self.gain_dims,
        }

    def remove_gain(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Log energies relative to the sequence's loudest frame, floored GAIN_RANGE below it.

        A microphone's gain or distance adds one constant to every log mel energy. Measuring the
        first `gain_dims` columns from the loudest real frame removes that constant; the floor
        keeps quiet frames from depending on the front end's absolute energy floor (which a
        quieter microphone would otherwise hit), so the model is gain-blind for speech peaking
        above about -40 dBFS. Spectral shape and level changes within the window stay.
        """
        if not self.gain_dims:
            return x
        energy = x[:, :, : self.gain_dims]
        frame_level = energy.mean(2).masked_fill(mask[:, :, 0] == 0, float("-inf"))
        peak = frame_level.max(1).values.clamp_min(-1e4)  # all-padding rows stay finite
        relative = (energy - peak[:, None, None]).clamp_min(-GAIN_RANGE)
        return torch.cat([relative, x[:, :, self.gain_dims:]], dim=2)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor, floor: float = FEATURE_STD_FLOOR) -> None:
        """Store training-set feature statistics; the std floor keeps constant features finite."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(floor))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                lead_in: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x [B, T, D] raw features, lengths [B] (None: all frames real) -> avd, logits, embedding.

        `lead_in` [B] (training only): each row's first frames that the GRU runs over but the pooling
        skips, the end of another clip before this one (trainer.sampling.lead_ins).
        """
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        mask = length_mask(lengths, x.shape[1])[:, :, None]
        pooled_mask = mask if lead_in is None else mask * (1.0 - length_mask(lead_in, x.shape[1])[:, :, None])
        # Zeroing padded frames after normalisation makes a padded sequence's last real frame see
        # the same zeros the convolution's own padding gives an unpadded one.
        x = self.remove_gain(x, mask)
        x = (x - self.feature_mean) / self.feature_std * mask
        out, _ = self.gru(self.input_layer(x))
        pooled = (out * pooled_mask).sum(1) / pooled_mask.sum(1).clamp_min(1.0)
        embedding = self.embedding(pooled)
        mid, half = (SCALE[1] + SCALE[0]) / 2, (SCALE[1] - SCALE[0]) / 2
        heads_in = self.dropout(embedding)
        avd = mid + half * torch.tanh(self.regression(heads_in))
        logits = self.classifier(heads_in) if self.classifier is not None else embedding[:, :0]
        return {"avd": avd, "logits": logits, "embedding": embedding}


class GRUModel(StudentModel):
    """Figure 1 (A): the features go straight into the GRU."""

    arch = "gru"


class TCGRUModel(StudentModel):
    """Figure 1 (B): a depthwise kernel-3 time convolution, concatenated with its input (skip).

    One filter per input dimension (groups = input_dim) is the reading of "as many convolutional
    layers as input dimensions" that matches the paper's model sizes.
    """

    arch = "tcgru"

    def __init__(self, input_dim: int, *args, **kwargs) -> None:
        super().__init__(input_dim, *args, **kwargs)
        self.time_conv = nn.Conv1d(input_dim, input_dim, kernel_size=3, padding=1, groups=input_dim)

    def gru_input_dim(self) -> int:
        return 2 * self.input_dim

    def input_layer(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.time_conv(x.transpose(1, 2)).transpose(1, 2)
        return torch.cat([conv, x], dim=-1)


ARCHITECTURES: dict[str, type[StudentModel]] = {cls.arch: cls for cls in (GRUModel, TCGRUModel)}
"""Architecture name (as in `--arch` and in a bundle's config.json) -> module class."""
assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES, "spec.py must describe every architecture"
