"""Network building blocks shared by every learner: MLPs and the polyak target update."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def mlp(in_dim: int, hidden: Iterable[int], out_dim: int) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging: θ_target ← τ·θ + (1 − τ)·θ_target."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy for use as a target network (no gradients)."""
    import copy
    return copy.deepcopy(module).requires_grad_(False)


def adam(parameters, lr: float = 1e-3, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters; the same update rule)."""
    return torch.optim.Adam(parameters, lr=lr, eps=eps, fused=True)
