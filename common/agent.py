"""What every learner shares: named modules saved and loaded under the reference file names,
an iteration counter, and the latest loss figures for the logs."""
from __future__ import annotations

import math

import numpy as np
import torch

from common.io import atomic_torch_save


class Agent:
    """Subclasses fill ``self.files`` with name → module or optimizer; ``save(prefix)`` writes each
    state dict to ``{prefix}_{name}`` (e.g. ``models/behavioral_CartPole-v1_0_Q``)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.files: dict[str, torch.nn.Module | torch.optim.Optimizer] = {}
        self.iterations = 0
        self.last_loss: dict[str, torch.Tensor] = {}

    def act_batch(self, states):
        """The greedy action of each state in a batch (a NumPy array in, a NumPy array out)."""
        raise NotImplementedError

    def act(self, state):
        """The greedy action for one environment state."""
        return self.act_batch(np.asarray(state)[None])[0]

    def model_files(self, prefix: str) -> list[str]:
        return [f"{prefix}_{name}" for name in self.files]

    def save(self, prefix: str) -> None:
        for name, obj in self.files.items():
            atomic_torch_save(f"{prefix}_{name}", obj.state_dict())

    def load(self, prefix: str) -> None:
        for name, obj in self.files.items():
            obj.load_state_dict(torch.load(f"{prefix}_{name}", map_location=self.device))
        self.after_load()

    def after_load(self) -> None:
        """Refresh what is derived from the loaded networks (target networks)."""

    def scalars(self) -> dict[str, float]:
        """The latest training figures as floats (reads them from the device: call it rarely)."""
        return {k: float(v) for k, v in self.last_loss.items()}

    def loss_summary(self) -> str:
        """The latest loss figures as ``name=value`` (reads them from the device: call it rarely)."""
        return " ".join(f"{k}={float(v):.4g}" for k, v in self.last_loss.items() if math.isfinite(float(v)))
