"""Fitted Q Evaluation of a fixed continuous policy (Le, Voloshin & Yue 2019; d3rlpy's ``FQE``)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from utils import Agent, Batch, adam, frozen_copy, soft_update
from continuous_BCQ.networks import Critic


class FQE(Agent):
    """Q^π of a fixed policy π fitted on offline data: the first head of BCQ's critic (400-300),
    y = r + m·γ·Q_targ(s', π(s')), MSE, Adam (learning rate 1e-4, d3rlpy's FQE default), polyak τ.
    ``policy`` maps a batch of states to actions."""

    def __init__(self, state_dim: int, action_dim: int, cfg, device, policy: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__(device)
        self.critic = Critic(state_dim, action_dim).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.optimizer = adam(self.critic.parameters(), lr=1e-4)
        self.discount, self.tau, self.policy = cfg.discount, cfg.tau, policy
        self.files = {"critic": self.critic, "optimizer": self.optimizer}

    def train(self, buffer) -> None:
        batch: Batch = buffer.sample()
        with torch.no_grad():
            next_q = self.critic_target.q1(batch.next_state, self.policy(batch.next_state))
            y = batch.reward + batch.not_done * self.discount * next_q
        with self.autocast():
            loss = F.mse_loss(self.critic.q1(batch.state, batch.action), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        soft_update(self.critic_target, self.critic, self.tau)
        self.iterations += 1
        self.last_loss = {"q_loss": loss.detach()}

    @torch.no_grad()
    def value(self, states: torch.Tensor) -> torch.Tensor:
        """V^π(s) = Q(s, π(s)) of each state in a batch, (B,)."""
        return self.critic.q1(states, self.policy(states))[:, 0]

    def after_load(self) -> None:
        self.critic_target = frozen_copy(self.critic)
