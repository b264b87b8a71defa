"""The two views of SQV and its controls (`common.learning.algorithms`), shared by the discrete and the continuous
learners."""
from __future__ import annotations

from typing import Callable

import torch

from common.learning.augment import augmented_views
from common.data.buffers import Batch


def two_views(batch: Batch, augment: Callable[[torch.Tensor], torch.Tensor],
              target: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
              views: str = "independent", targets: str = "swap"):
    """Two views of a batch, stacked along the batch axis, and the targets they regress on.

    ``views``: ``independent``, view k = (aug(s), aug(s')), the four augmentations independent (the
    released SQV code); ``clean``, view 1 = (s, s'), view 2 = (aug(s), aug(s')) (the paper's wording).
    y_k = target(view k's s'). ``targets``: ``swap`` (SQV), view 1's rows carry y₂ and view 2's y₁;
    ``own``, each view its own y_k; ``mean`` (BCQ+aug, DrQ's recipe), both (y₁ + y₂) / 2.
    Returns (states of both views (2B, ...), targets (2B, 1)); both views go through each network
    as one batch.
    """
    if augment is None:
        raise RuntimeError("a two-view learner needs an augmentation: set agent.augment")
    if views == "independent":
        state, next_state = augmented_views(augment, batch)  # one call for all four
    elif views == "clean":
        aug_state, aug_next_state = augmented_views(augment, batch, copies=1)
        state, next_state = torch.cat([batch.state, aug_state]), torch.cat([batch.next_state, aug_next_state])
    else:
        raise ValueError(f"unknown view formulation {views!r}")
    y = target(next_state, batch.reward.repeat(2, 1), batch.not_done.repeat(2, 1))
    b = batch.state.shape[0]
    if targets == "swap":
        return state, y.roll(b, dims=0)
    if targets == "mean":
        return state, ((y[:b] + y[b:]) / 2).repeat(2, 1)
    if targets == "own":
        return state, y
    raise ValueError(f"unknown target rule {targets!r}")
