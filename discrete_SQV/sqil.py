"""SQIL: soft Q imitation learning (Reddy, Dragan & Levine 2019), from the generated buffer."""
from __future__ import annotations

import math

import numpy as np
import torch

from utils import Batch, mix_actions
from discrete_SQV.dqn import DQN


class DemoMix:
    """Samples half of every batch from the demonstrations with reward 1 and half from the agent's
    own transitions with reward 0 (each keeps its not_done). Batches are demos first, then agent."""

    def __init__(self, demos, online, batch_size: int):
        self.demos, self.online = demos, online
        self.demo_half, self.online_half = batch_size - batch_size // 2, batch_size // 2

    @property
    def size(self) -> int:  # training starts once the agent's half can be filled
        return self.online.size if self.online.size >= self.online_half else 0

    def sample(self) -> Batch:
        demo, own = self.demos.sample(self.demo_half), self.online.sample(self.online_half)
        reward = torch.cat([torch.ones_like(demo.reward), torch.zeros_like(own.reward)])
        return Batch(torch.cat([demo.state, own.state]), torch.cat([demo.action, own.action]),
                     torch.cat([demo.next_state, own.next_state]), reward, torch.cat([demo.not_done, own.not_done]))


class SQIL(DQN):
    """Soft Q-learning on relabelled rewards.

    V(s') = α·logsumexp(Q_targ(s', ·)/α);  y = clip(r + m·γ·V(s'), 0, Q_max);  loss = Huber(Q(s, a), y), the
    project's DQN loss: quadratic for errors below 1 (where SQIL's squared loss and it agree) and
    linear beyond, which keeps early updates bounded on Atari. Acting samples softmax(Q/α); with
    probability ε (the DQN schedule) it is uniformly random instead. Evaluation is greedy.

    Q_max = (1 + γ·α·log A) / (1 − γ) bounds the soft values of rewards in {0, 1} (V ≤ max Q + α·log A).
    The clip changes nothing while the estimates stay in range; without it, long runs on CartPole
    (100k steps) lost the demonstrated policy and the Q-values then diverged to ~1e6 (README, SQIL).
    """

    def __init__(self, kind, state_shape, num_actions, cfg, device):
        super().__init__(kind, state_shape, num_actions, cfg, device)
        self.alpha = cfg.sqil_alpha
        # The soft Q-values of rewards in {0, 1} lie in [0, (1 + γ·α·log A) / (1 − γ)].
        self.q_max = ((1.0 + self.discount * self.alpha * math.log(num_actions)) / (1.0 - self.discount)
                      if self.discount < 1 else math.inf)

    @torch.no_grad()
    def target(self, next_state, reward, not_done):
        q = self.Q_target(next_state)[0]
        value = self.alpha * torch.logsumexp(q / self.alpha, dim=1, keepdim=True)
        return (reward + not_done * self.discount * value).clamp(0.0, self.q_max)

    @torch.no_grad()
    def soft_actions(self, states: np.ndarray) -> np.ndarray:
        logits = self.Q(torch.as_tensor(states, device=self.device).float())[0] / self.alpha
        return torch.distributions.Categorical(logits=logits).sample().cpu().numpy()

    def explore_actions(self, states: np.ndarray, rng: np.random.Generator, space) -> np.ndarray:
        return mix_actions(self.soft_actions, states, rng.random(len(states)) < self.epsilon(), space, rng)
