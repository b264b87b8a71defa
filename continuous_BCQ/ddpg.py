"""DDPG (Lillicrap et al. 2016), the behavioral agent of the continuous family."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from utils import Agent, Batch, adam, frozen_copy, mix_actions, soft_update
from continuous_BCQ.networks import Actor, Critic


def as_tensor(states: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(states), dtype=torch.float32, device=device)


class ActorCriticAgent(Agent):
    """An agent with ``actor``/``critic`` networks and polyak-averaged targets of both."""

    @torch.no_grad()
    def current_value(self) -> torch.Tensor | None:
        batch = self.last_batch
        return None if batch is None else self.critic.q1(batch.state, batch.action).mean()

    def update_targets(self) -> None:
        soft_update(self.critic_target, self.critic, self.tau)
        soft_update(self.actor_target, self.actor, self.tau)
        self.iterations += 1

    def after_load(self) -> None:
        self.actor_target, self.critic_target = frozen_copy(self.actor), frozen_copy(self.critic)


class DDPG(ActorCriticAgent):
    """y = r + m·γ·Q_targ(s', μ_targ(s')); critic MSE; actor −Q(s, μ(s)); polyak τ on both targets.

    Adam with learning rate 3e-4 for actor and critic (Fujimoto's "OurDDPG" settings; the 2016
    paper's 1e-4 / 1e-3 with critic weight decay learns Pendulum far more slowly). Exploration adds
    N(0, gaussian_std·max_action) to the policy's action and clips to the bounds.
    """

    def __init__(self, state_dim: int, action_dim: int, max_action: np.ndarray, cfg, device):
        super().__init__(device)
        self.max_action_np = np.asarray(max_action, dtype=np.float32)
        max_action_t = torch.as_tensor(self.max_action_np, device=device)
        self.actor = Actor(state_dim, action_dim, max_action_t).to(device)
        self.actor_target = frozen_copy(self.actor)
        self.actor_optimizer = adam(self.actor.parameters(), lr=3e-4)
        self.critic = Critic(state_dim, action_dim).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.critic_optimizer = adam(self.critic.parameters(), lr=3e-4)
        self.discount, self.tau = cfg.discount, cfg.tau
        self.gaussian_std, self.rand_action_p = cfg.gaussian_std, cfg.rand_action_p
        self.files = {"actor": self.actor, "actor_optimizer": self.actor_optimizer,
                      "critic": self.critic, "critic_optimizer": self.critic_optimizer}

    @torch.no_grad()
    def greedy_actions(self, states: torch.Tensor) -> torch.Tensor:
        return self.actor(states)

    def act_batch(self, states: np.ndarray) -> np.ndarray:
        return self.greedy_actions(as_tensor(states, self.device)).cpu().numpy()

    def noisy(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0.0, self.gaussian_std * self.max_action_np, (len(states), len(self.max_action_np)))
        return np.clip(self.act_batch(states) + noise, -self.max_action_np, self.max_action_np).astype(np.float32)

    def explore_actions(self, states: np.ndarray, rng: np.random.Generator, space) -> np.ndarray:
        return self.noisy(states, rng)

    def buffer_actions(self, states: np.ndarray, rng: np.random.Generator, low_noise: np.ndarray, space) -> np.ndarray:
        """Per state: with probability ``rand_action_p`` a uniformly random action, else the policy plus noise
        (``low_noise`` does not apply to the continuous family)."""
        return mix_actions(lambda s: self.noisy(s, rng), states, rng.random(len(states)) < self.rand_action_p,
                           space, rng)

    def train(self, buffer) -> None:
        batch: Batch = buffer.sample()
        self.last_batch = batch
        with torch.no_grad(), self.autocast():
            next_q = self.critic_target(batch.next_state, self.actor_target(batch.next_state))[0]
            y = batch.reward + batch.not_done * self.discount * next_q
        with self.autocast():
            critic_loss = F.mse_loss(self.critic(batch.state, batch.action)[0], y)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        with self.autocast():
            actor_loss = -self.critic.q1(batch.state, self.actor(batch.state)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        self.update_targets()
        self.last_loss = {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach()}
