"""Fitted Q Evaluation of a fixed discrete policy (Le, Voloshin & Yue 2019; d3rlpy's ``DiscreteFQE``)."""
from __future__ import annotations

from typing import Callable

import torch

from discrete_SQV.dqn import DQN


class FQE(DQN):
    """Q^π of a fixed greedy policy π, fitted on offline data: DQN's update (network, Huber loss,
    optimizer, target updates) with the target's max replaced by π's action,
    y = r + m·γ·Q_targ(s', π(s')). ``policy`` maps a batch of states to actions (B,) on the device."""

    logs_epsilon = False  # FQE does not act

    def __init__(self, kind, state_shape, num_actions, cfg, device, policy: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__(kind, state_shape, num_actions, cfg, device)
        self.policy = policy

    @torch.no_grad()
    def target(self, next_state, reward, not_done):
        next_q = self.Q_target(next_state, imitation=False)[0].gather(1, self.policy(next_state).view(-1, 1))
        return reward + not_done * self.discount * next_q

    @torch.no_grad()
    def value(self, states: torch.Tensor) -> torch.Tensor:
        """V^π(s) = Q(s, π(s)) of each state in a batch, (B,)."""
        return self.Q(states, imitation=False)[0].gather(1, self.policy(states).view(-1, 1))[:, 0]
