"""SQV's swap applied to continuous BCQ's critic: this project's extension (the paper is discrete only)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from utils import Batch, two_views
from continuous_BCQ.bcq import BCQ


class SQV(BCQ):
    """Continuous BCQ whose critics learn from two noise-augmented views, by default with swapped targets.

    ``views``/``targets`` as in `common.learning.swap.two_views`; the default (independent, swap): view k =
    (aug(s), aug(s')), all four augmentations independent; y_k is BCQ's target (10 decoded and perturbed actions, λ-soft clipped double Q, max over the 10) from view k's s'.
    critic loss = Σ_k [MSE(Q1(s_k, a), y_other(k)) + MSE(Q2(s_k, a), y_other(k))].
    The VAE and the actor train on the un-augmented batch, as in BCQ.
    """

    views, targets = "independent", "swap"

    def __init__(self, state_dim, action_dim, max_action, cfg, device, augment=None, items=None,
                 views=None, targets=None):
        super().__init__(state_dim, action_dim, max_action, cfg, device, items)
        self.augment = augment
        self.views, self.targets = views or self.views, targets or self.targets

    def critic_loss(self, batch: Batch) -> torch.Tensor:
        state, y = two_views(batch, self.augment, self.target, self.views, self.targets)
        q1, q2 = self.critic(state, batch.action.repeat(2, 1))
        # per-view means summed over the two equal views = 2 × the mean over both
        return 2 * (F.mse_loss(q1, y) + F.mse_loss(q2, y))
