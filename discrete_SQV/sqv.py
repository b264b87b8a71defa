"""SQV: Swapping Target Q-Value (Joo, Baek & Kim 2022, IEEE Access), and its controls."""
from __future__ import annotations

from utils import Batch, two_views
from discrete_SQV.bcq import BCQ


class SQV(BCQ):
    """Discrete BCQ trained on two views of each transition, by default with swapped targets.

    ``views``/``targets`` as in `common.learning.swap.two_views`; the default (independent, swap) is the released
    code: view k = (aug(s), aug(s')), all four augmentations independent, y_k view k's BCQ target
    (masked argmax by the online net on view k's s', evaluated by the target net on the same s'), and
    loss = Huber(q(s₁)_a, y₂) + Huber(q(s₂)_a, y₁) + NLL₁ + NLL₂ + 0.01·(mean(i₁²) + mean(i₂²)).
    Both views go through each network as one batch of 2B (no layer mixes samples, so the math is
    that of two separate passes). Acting and target updates are BCQ's.
    """

    views, targets = "independent", "swap"

    def __init__(self, kind, state_shape, num_actions, cfg, device, augment=None, views=None, targets=None):
        super().__init__(kind, state_shape, num_actions, cfg, device)
        self.augment = augment
        self.views, self.targets = views or self.views, targets or self.targets

    def loss(self, batch: Batch):
        state, y = two_views(batch, self.augment, self.target, self.views, self.targets)
        return self.bcq_loss(state, batch.action.repeat(2, 1), y, views=2)
