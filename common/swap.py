"""The SQV swap (Joo, Baek & Kim 2022) and its unswapped control (``--aug``), shared by the discrete and the
continuous learners."""
from __future__ import annotations

from typing import Callable

import torch

from common.augment import augmented_views
from common.buffers import Batch


def swapped_views(batch: Batch, augment: Callable[[torch.Tensor], torch.Tensor],
                  target: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], swap: bool = True):
    """Two augmented views of a batch, stacked along the batch axis, and the targets they regress on.

    View k = (aug(s), aug(s')), the four augmentations independent (one batched call); y_k = target(view k's s').
    Returns (states of both views (2B, ...), targets (2B, 1)). SQV (``swap``): view 1's rows carry y₂
    and view 2's rows carry y₁. Without the swap (``--aug``, DrQ's recipe) both views carry
    (y₁ + y₂) / 2. Both views go through each network as one batch.
    """
    if augment is None:
        raise RuntimeError("SQV needs an augmentation: set agent.augment")
    state, next_state = augmented_views(augment, batch)  # one call
    y = target(next_state, batch.reward.repeat(2, 1), batch.not_done.repeat(2, 1))
    b = batch.state.shape[0]
    return state, (y.roll(b, dims=0) if swap else ((y[:b] + y[b:]) / 2).repeat(2, 1))
