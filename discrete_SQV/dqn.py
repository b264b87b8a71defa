"""DQN, the behavioral agent, and the learner machinery BCQ and SQV inherit from it."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from utils import Agent, Batch, adam, frozen_copy, mix_actions, soft_update
from discrete_SQV.networks import DiscreteNet


class DQN(Agent):
    """Deep Q-learning (Mnih et al. 2015).

    y = r + m·γ·max_a Q_targ(s', a);  loss = Huber(Q(s, a), y).
    ε decays linearly from ``initial_eps`` to ``end_eps`` over ``eps_decay_period`` training
    iterations. The target network is a full copy every ``target_update_freq`` iterations or, with
    ``polyak_target_update``, Q_targ ← τ·Q + (1 − τ)·Q_targ after every iteration.
    """

    imitation = False
    logs_epsilon = True  # the behavioral agent's ε schedule; offline learners do not explore

    def __init__(self, kind: str, state_shape: tuple, num_actions: int, cfg: Any, device: torch.device):
        super().__init__(device)
        self.num_actions = num_actions
        self.Q = DiscreteNet(kind, state_shape, num_actions, self.imitation, cfg.pixel_scale).to(device)
        self.Q_target = frozen_copy(self.Q)
        self.optimizer = adam(self.Q.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.discount = cfg.discount
        self.polyak, self.tau, self.target_update_freq = cfg.polyak_target_update, cfg.tau, cfg.target_update_freq
        self.initial_eps, self.end_eps = cfg.initial_eps, cfg.end_eps
        self.eval_eps, self.rand_action_p = cfg.eval_eps, cfg.rand_action_p
        self.slope = (cfg.end_eps - cfg.initial_eps) / cfg.eps_decay_period
        self.files = {"Q": self.Q, "optimizer": self.optimizer}  # reference names: {prefix}_Q, _optimizer

    # --- acting -------------------------------------------------------------------------------
    def epsilon(self) -> float:
        return max(self.slope * self.iterations + self.initial_eps, self.end_eps)

    def greedy_actions(self, states: torch.Tensor) -> torch.Tensor:
        """The greedy action of each state in a batch."""
        return self.Q(states)[0].argmax(1)

    @torch.no_grad()
    def act_batch(self, states: np.ndarray) -> np.ndarray:
        """The greedy action of each environment state in a batch (ε is applied by the caller)."""
        return self.greedy_actions(torch.as_tensor(states, device=self.device).float()).cpu().numpy()

    def explore_actions(self, states: np.ndarray, rng: np.random.Generator, space) -> np.ndarray:
        """Behavioral training: ε-greedy with the decayed ε, per state."""
        return mix_actions(self.act_batch, states, rng.random(len(states)) < self.epsilon(), space, rng)

    def buffer_actions(self, states: np.ndarray, rng: np.random.Generator, low_noise: np.ndarray, space) -> np.ndarray:
        """Buffer generation, per state: in a low-noise episode ε-greedy with ``eval_eps``; otherwise
        an action is first uniformly random with probability ``rand_action_p − eval_eps``."""
        n = len(states)
        random = (~low_noise & (rng.random(n) < self.rand_action_p - self.eval_eps)) | (rng.random(n) < self.eval_eps)
        return mix_actions(self.act_batch, states, random, space, rng)

    # --- learning -----------------------------------------------------------------------------
    @torch.no_grad()
    def target(self, next_state: torch.Tensor, reward: torch.Tensor, not_done: torch.Tensor) -> torch.Tensor:
        next_q = self.Q_target(next_state, imitation=False)[0].max(1, keepdim=True).values
        return reward + not_done * self.discount * next_q

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        y = self.target(batch.next_state, batch.reward, batch.not_done)
        q = self.Q(batch.state)[0].gather(1, batch.action)
        loss = F.smooth_l1_loss(q, y)
        return loss, {"q_loss": loss.detach(), "mean_q": q.detach().mean()}

    def train(self, buffer) -> None:
        """One gradient step on a batch sampled from ``buffer``, then the target update."""
        self.last_batch = buffer.sample()
        with self.autocast():
            loss, self.last_loss = self.loss(self.last_batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.iterations += 1
        self.update_target()

    @torch.no_grad()
    def current_value(self) -> torch.Tensor | None:
        batch = self.last_batch
        return None if batch is None else self.Q(batch.state)[0].gather(1, batch.action).mean()

    @torch.no_grad()
    def update_target(self) -> None:
        if self.polyak:
            soft_update(self.Q_target, self.Q, self.tau)
        elif self.iterations % self.target_update_freq == 0:
            self.Q_target.load_state_dict(self.Q.state_dict())

    def scalars(self) -> dict[str, float]:
        return {**super().scalars(), **({"epsilon": self.epsilon()} if self.logs_epsilon else {})}

    def after_load(self) -> None:
        self.Q_target = frozen_copy(self.Q)
