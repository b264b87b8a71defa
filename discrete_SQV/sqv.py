"""SQV: Swapping Target Q-Value (Joo, Baek & Kim 2022, IEEE Access)."""
from __future__ import annotations

from common.buffers import Batch
from common.swap import swapped_views
from discrete_SQV.bcq import BCQ


class SQV(BCQ):
    """Discrete BCQ trained on two augmented views whose targets are swapped.

    View k = (aug(s), aug(s')) with all four augmentations independent; y_k is view k's BCQ target
    (masked argmax by the online net on view k's s', evaluated by the target net on the same s').
    loss = Huber(q(s₁)_a, y₂) + Huber(q(s₂)_a, y₁) + NLL₁ + NLL₂ + 0.01·(mean(i₁²) + mean(i₂²)).
    Both views go through each network as one batch of 2B (no layer mixes samples, so the math is
    that of two separate passes). Acting and target updates are BCQ's.
    """

    swap = True

    def __init__(self, kind, state_shape, num_actions, cfg, device, augment=None):
        super().__init__(kind, state_shape, num_actions, cfg, device)
        self.augment = augment

    def loss(self, batch: Batch):
        state, y = swapped_views(batch, self.augment, self.target, self.swap)
        return self.bcq_loss(state, batch.action.repeat(2, 1), y, views=2)


class BCQAug(SQV):
    """``--aug``: SQV without the swap, the control that separates augmentation from swapping.
    Both views regress on the average of their two targets, (y₁ + y₂) / 2 (DrQ, Kostrikov et al. 2020)."""

    swap = False
