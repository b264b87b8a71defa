"""Networks of the continuous family (Fujimoto, Meger & Precup 2019, docs/DESIGN.md §4).

Every MLP is `common.learning.nets.mlp`; ``max_action`` is a per-dimension tensor of the (symmetric)
action bounds, so actions are scaled by the env's own bounds.
"""
from __future__ import annotations

import torch
from torch import nn
from utils import mlp



class Actor(nn.Module):
    """DDPG's deterministic policy: s → 400 → 300 → max_action·tanh."""

    def __init__(self, state_dim: int, action_dim: int, max_action: torch.Tensor):
        super().__init__()
        self.net = mlp(state_dim, (400, 300), action_dim)
        self.register_buffer("max_action", max_action)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.max_action * torch.tanh(self.net(state))


class Critic(nn.Module):
    """Q(s, a) with one or more independent 400-300 heads on (s, a)."""

    def __init__(self, state_dim: int, action_dim: int, heads: int = 1):
        super().__init__()
        self.heads = nn.ModuleList(mlp(state_dim + action_dim, (400, 300), 1) for _ in range(heads))

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sa = torch.cat([state, action], 1)
        return tuple(head(sa) for head in self.heads)

    def q1(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.heads[0](torch.cat([state, action], 1))


class Perturbation(nn.Module):
    """BCQ's actor ξ_φ: a + φ·max_action·tanh(f(s, a)), clamped to the action bounds."""

    def __init__(self, state_dim: int, action_dim: int, max_action: torch.Tensor, phi: float):
        super().__init__()
        self.net = mlp(state_dim + action_dim, (400, 300), action_dim)
        self.register_buffer("max_action", max_action)
        self.phi = float(phi)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        delta = self.phi * self.max_action * torch.tanh(self.net(torch.cat([state, action], 1)))
        return torch.clamp(action + delta, -self.max_action, self.max_action)


class VAE(nn.Module):
    """Conditional VAE of the buffer's actions given the state.

    Encoder (s, a) → 750 → 750 → (μ, log σ clamped to [−4, 15]); decoder (s, z) → 750 → 750 →
    max_action·tanh. Sampling without z draws z ~ N(0, 1) clipped to [−0.5, 0.5].
    """

    def __init__(self, state_dim: int, action_dim: int, latent_dim: int, max_action: torch.Tensor):
        super().__init__()
        self.encoder = mlp(state_dim + action_dim, (750, 750), 2 * latent_dim)
        self.decoder = mlp(state_dim + latent_dim, (750, 750), action_dim)
        self.register_buffer("max_action", max_action)
        self.latent_dim = latent_dim

    def forward(self, state: torch.Tensor, action: torch.Tensor):
        mean, log_std = self.encoder(torch.cat([state, action], 1)).chunk(2, dim=1)
        std = log_std.clamp(-4, 15).exp()
        z = mean + std * torch.randn_like(std)
        return self.decode(state, z), mean, std

    def decode(self, state: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            z = torch.randn(state.shape[0], self.latent_dim, device=state.device).clamp(-0.5, 0.5)
        return self.max_action * torch.tanh(self.decoder(torch.cat([state, z], 1)))
