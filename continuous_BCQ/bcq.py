"""Continuous BCQ (Fujimoto, Meger & Precup 2019, "Off-Policy Deep RL without Exploration")."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from utils import Batch, adam, frozen_copy, top_k, unit
from continuous_BCQ.ddpg import ActorCriticAgent, as_tensor
from continuous_BCQ.networks import VAE, Critic, Perturbation

TARGET_SAMPLES = 10   # actions decoded per next state in the target


class BCQ(ActorCriticAgent):
    """Batch-constrained Q-learning for continuous actions.

    A VAE G models the buffer's actions, loss = MSE(recon, a) + 0.5·KL. A perturbation actor ξ
    moves a decoded action by at most φ·max_action. Twin critics regress onto
    y = r + m·γ·max_{j≤10} [λ·min(Q1', Q2') + (1 − λ)·max(Q1', Q2')](s', ξ'(s', a_j)), a_j ~ G(s');
    the actor maximises Q1(s, ξ(s, G(s))). Polyak τ on actor and critic targets.
    Acting: decode ``repeat_num`` (100) actions for s, perturb, take the one with the highest Q1.

    With ``items`` (item embeddings, (N, d) with d the action size) BCQ acts in the item-embedding
    space of a recommender: every logged action is replaced by the unit embedding of the item it
    ranked first (the logged item), so the VAE reconstructs logged items' embeddings, and
    `recommend` returns the top-k items by cosine similarity to the chosen action.
    """

    def __init__(self, state_dim: int, action_dim: int, max_action: np.ndarray, cfg, device,
                 items: np.ndarray | None = None):
        super().__init__(device)
        self.items = None if items is None else unit(torch.as_tensor(items, dtype=torch.float32, device=device))
        self.repeat_num = int(cfg.repeat_num)  # actions decoded per state when acting
        max_action_t = torch.as_tensor(np.asarray(max_action, dtype=np.float32), device=device)
        self.actor = Perturbation(state_dim, action_dim, max_action_t, cfg.phi).to(device)
        self.actor_target = frozen_copy(self.actor)
        self.actor_optimizer = adam(self.actor.parameters(), lr=1e-3)
        self.critic = Critic(state_dim, action_dim, heads=2).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.critic_optimizer = adam(self.critic.parameters(), lr=1e-3)
        self.vae = VAE(state_dim, action_dim, 2 * action_dim, max_action_t).to(device)
        self.vae_optimizer = adam(self.vae.parameters())
        self.discount, self.tau, self.lmbda = cfg.discount, cfg.tau, cfg.lmbda
        self.files = {"actor": self.actor, "actor_optimizer": self.actor_optimizer,
                      "critic": self.critic, "critic_optimizer": self.critic_optimizer,
                      "vae": self.vae, "vae_optimizer": self.vae_optimizer}

    @torch.no_grad()
    def greedy_actions(self, states: torch.Tensor) -> torch.Tensor:
        """For each state, ``repeat_num`` decoded and perturbed actions, the one with the highest Q1 kept."""
        n = len(states)
        repeated = torch.repeat_interleave(states, self.repeat_num, 0)
        actions = self.actor(repeated, self.vae.decode(repeated))
        best = self.critic.q1(repeated, actions).view(n, self.repeat_num).argmax(1)
        return actions.view(n, self.repeat_num, -1)[torch.arange(n, device=self.device), best]

    def act_batch(self, states: np.ndarray) -> np.ndarray:
        return self.greedy_actions(as_tensor(states, self.device)).cpu().numpy()

    def recommend(self, states: np.ndarray, k: int) -> np.ndarray:
        """The k items (indices, best first) most cosine-similar to the action chosen for each state."""
        return top_k(torch.as_tensor(self.act_batch(states), device=self.device), self.items, k).cpu().numpy()

    def logged_items(self, actions: torch.Tensor) -> torch.Tensor:
        """The unit embedding of the item each logged action ranked first."""
        return self.items[top_k(actions, self.items, 1)[:, 0]]

    @torch.no_grad()
    def target(self, next_state: torch.Tensor, reward: torch.Tensor, not_done: torch.Tensor) -> torch.Tensor:
        repeated = torch.repeat_interleave(next_state, TARGET_SAMPLES, 0)
        q1, q2 = self.critic_target(repeated, self.actor_target(repeated, self.vae.decode(repeated)))
        q = self.lmbda * torch.min(q1, q2) + (1.0 - self.lmbda) * torch.max(q1, q2)
        q = q.view(next_state.shape[0], TARGET_SAMPLES).max(1, keepdim=True).values
        return reward + not_done * self.discount * q

    def vae_loss(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        recon, mean, std = self.vae(state, action)
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        return F.mse_loss(recon, action) + 0.5 * kl

    def critic_loss(self, batch: Batch) -> torch.Tensor:
        y = self.target(batch.next_state, batch.reward, batch.not_done)
        q1, q2 = self.critic(batch.state, batch.action)
        return F.mse_loss(q1, y) + F.mse_loss(q2, y)

    def train(self, buffer) -> None:
        batch: Batch = buffer.sample()
        if self.items is not None:
            batch = batch._replace(action=self.logged_items(batch.action))
        self.last_batch = batch
        with self.autocast():
            vae_loss = self.vae_loss(batch.state, batch.action)
        self.vae_optimizer.zero_grad(set_to_none=True)
        vae_loss.backward()
        self.vae_optimizer.step()

        with self.autocast():
            critic_loss = self.critic_loss(batch)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        with torch.no_grad(), self.autocast():  # the actor's loss does not train the VAE
            sampled = self.vae.decode(batch.state)
        with self.autocast():
            actor_loss = -self.critic.q1(batch.state, self.actor(batch.state, sampled)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        self.update_targets()
        self.last_loss = {"vae_loss": vae_loss.detach(), "critic_loss": critic_loss.detach(),
                          "actor_loss": actor_loss.detach()}
