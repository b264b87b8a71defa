"""What every learner shares: named modules saved and loaded under the reference file names,
an iteration counter, and the latest loss figures for the logs."""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from common.errors import UserError
from common.io import atomic_torch_save, checksum_problem, record_checksums


class DamagedModel(UserError):
    """A model file whose SHA-256 differs from the one recorded when it was saved (callers add the fix)."""


def checksums_path(prefix: str) -> str:
    return f"{prefix}_checksums.json"


class Agent:
    """Subclasses fill ``self.files`` with name → module or optimizer; ``save(prefix)`` writes each
    state dict to ``{prefix}_{name}`` (e.g. ``models/behavioral_CartPole-v1_0_Q``) and their SHA-256s
    to ``{prefix}_checksums.json``; ``load(prefix)`` checks them first and reads tensors only
    (``weights_only``). Files without a checksum record (the reference code's) load with a notice."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.files: dict[str, torch.nn.Module | torch.optim.Optimizer] = {}
        self.iterations = 0
        self.last_loss: dict[str, torch.Tensor] = {}
        self.last_batch = None  # the latest training batch (the divergence guard evaluates it)
        self.precision = "fp32"  # --precision: bf16 runs the training forward passes under autocast

    def act_batch(self, states):
        """The greedy action of each state in a batch (a NumPy array in, a NumPy array out)."""
        raise NotImplementedError

    def act(self, state):
        """The greedy action for one environment state."""
        return self.act_batch(np.asarray(state)[None])[0]

    def model_files(self, prefix: str) -> list[str]:
        return [f"{prefix}_{name}" for name in self.files]

    def save(self, prefix: str) -> None:
        paths = [atomic_torch_save(f"{prefix}_{name}", obj.state_dict()) for name, obj in self.files.items()]
        record_checksums(checksums_path(prefix), paths)

    def load(self, prefix: str) -> None:
        paths = self.model_files(prefix)
        if os.path.exists(checksums_path(prefix)):
            problem = checksum_problem(checksums_path(prefix), paths)
            if problem:
                raise DamagedModel(f"model {problem}")
        else:
            print(f"note: model {prefix}_* has no {os.path.basename(checksums_path(prefix))} (saved elsewhere): "
                  "loading its tensors without checksums")
        for path, obj in zip(paths, self.files.values()):
            obj.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
        self.after_load()

    def load_trained(self, prefix: str, what: str, env: str, train: str) -> None:
        """`load` the model a stage saved, or one clear error naming the problem and ``train``, the
        command that (re)makes it (``what``: the model's name in the message, e.g. ``behavioral``)."""
        missing = [path for path in self.model_files(prefix) if not os.path.isfile(path)]
        if missing:
            raise UserError(f"no trained {what} model at {missing[0]}; train it first: {train}")
        try:
            self.load(prefix)
        except DamagedModel as err:
            raise UserError(f"{err}; train it again with: {train}") from None
        except Exception:  # a wrong shape, other layer names, a truncated file saved without checksums
            raise UserError(f"{what} model {prefix}_* cannot be loaded for env {env}: the file is truncated or "
                            f"corrupted, or it was trained for another env or other flags, or saved by the reference "
                            f"code (whose layer names differ); train it again with: {train}") from None

    def autocast(self):
        """The region of a training step's forward passes and losses: bfloat16 autocast with
        ``--precision bf16`` (backward passes and optimizer steps stay outside it), else nothing."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def current_value(self) -> torch.Tensor | None:
        """The mean value estimate Q(s, a) of the latest training batch under the current weights
        (no RNG drawn), which `common.training.guards.FiniteGuard` bounds; None for learners without one."""
        return None

    def after_load(self) -> None:
        """Refresh what is derived from the loaded networks (target networks)."""

    def scalars(self) -> dict[str, float]:
        """The latest training figures as floats (reads them from the device: call it rarely)."""
        return {k: float(v) for k, v in self.last_loss.items()}

    def loss_summary(self) -> str:
        """The latest loss figures as ``name=value`` (reads them from the device: call it rarely)."""
        return " ".join(f"{k}={float(v):.4g}" for k, v in self.last_loss.items() if math.isfinite(float(v)))
