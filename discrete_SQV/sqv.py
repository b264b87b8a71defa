"""SQV: Swapping Target Q-Value (Joo, Baek & Kim 2022, IEEE Access)."""
from __future__ import annotations

import torch

from common.buffers import Batch
from discrete_SQV.bcq import BCQ


class SQV(BCQ):
    """Discrete BCQ trained on two augmented views whose targets are swapped.

    View k = (aug(s), aug(s')) with all four augmentations independent; y_k is view k's BCQ target
    (masked argmax by the online net on view k's s', evaluated by the target net on the same s').
    loss = Huber(q(s₁)_a, y₂) + Huber(q(s₂)_a, y₁) + NLL₁ + NLL₂ + 0.01·(mean(i₁²) + mean(i₂²)).
    Both views go through each network as one batch of 2B (no layer mixes samples, so the math is
    that of two separate passes). Acting and target updates are BCQ's.
    """

    def __init__(self, kind, state_shape, num_actions, cfg, device, augment=None):
        super().__init__(kind, state_shape, num_actions, cfg, device)
        self.augment = augment

    def loss(self, batch: Batch):
        if self.augment is None:
            raise RuntimeError("SQV needs an augmentation: set agent.augment")
        aug = self.augment
        state = torch.cat([aug(batch.state), aug(batch.state)])
        next_state = torch.cat([aug(batch.next_state), aug(batch.next_state)])
        y = self.target(next_state, batch.reward.repeat(2, 1), batch.not_done.repeat(2, 1))
        y_swapped = y.roll(batch.state.shape[0], dims=0)  # view 1 regresses on y₂, view 2 on y₁
        return self.bcq_loss(state, batch.action.repeat(2, 1), y_swapped, views=2)
