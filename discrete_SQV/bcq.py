"""Discrete BCQ (Fujimoto, Conti, Ghavamzadeh & Pineau 2019, "Benchmarking Batch Deep RL Algorithms")."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from utils import Batch
from discrete_SQV.dqn import DQN


def allowed_actions(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """M(s) = {a : π(a|s) / max_b π(b|s) > τ} with π = softmax(logits), as a boolean (B, A) mask."""
    log_pi = F.log_softmax(logits, dim=1)
    return log_pi - log_pi.max(1, keepdim=True).values > (math.log(threshold) if threshold > 0 else -math.inf)


def masked_argmax(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """argmax of q over the allowed actions (the behaviour's argmax is always allowed)."""
    return q.masked_fill(~mask, -math.inf).argmax(1, keepdim=True)


class BCQ(DQN):
    """Discrete BCQ: Q-learning restricted to actions the behaviour policy takes.

    One network gives q(s) and imitation logits i(s), π = softmax(i). With
    a* = argmax_{a ∈ M(s')} q(s') from the online net and y = r + m·γ·Q_targ(s', a*):
    loss = Huber(q(s)_a, y) + NLL(log π(·|s), a) + 0.01·mean(i²).
    Acting: argmax over M(s) of q(s).
    """

    imitation = True
    logs_epsilon = False

    def __init__(self, kind, state_shape, num_actions, cfg, device):
        super().__init__(kind, state_shape, num_actions, cfg, device)
        self.threshold = cfg.BCQ_threshold

    def greedy_actions(self, states: torch.Tensor) -> torch.Tensor:
        q, logits = self.Q(states)
        return masked_argmax(q, allowed_actions(logits, self.threshold))[:, 0]

    @torch.no_grad()
    def target(self, next_state, reward, not_done):
        next_state = self.Q.inputs(next_state)  # converted once for both networks
        q, logits = self.Q(next_state)
        next_action = masked_argmax(q, allowed_actions(logits, self.threshold))
        return reward + not_done * self.discount * self.Q_target(next_state, imitation=False)[0].gather(1, next_action)

    def bcq_loss(self, state: torch.Tensor, action: torch.Tensor, y: torch.Tensor, views: int = 1):
        """The BCQ loss summed over ``views`` equal-sized views stacked along the batch axis."""
        q, logits = self.Q(state)
        q_a = q.gather(1, action)
        # Each term is a mean over one view; with equal views, sum of per-view means = views · mean.
        q_loss = views * F.smooth_l1_loss(q_a, y)
        i_loss = views * F.nll_loss(F.log_softmax(logits, dim=1), action[:, 0])
        reg = views * 1e-2 * logits.pow(2).mean()
        stats = {"q_loss": q_loss.detach(), "i_loss": i_loss.detach(), "mean_q": q_a.detach().mean(),
                 "allowed": allowed_actions(logits.detach(), self.threshold).float().mean()}
        return q_loss + i_loss + reg, stats

    def loss(self, batch: Batch):
        return self.bcq_loss(batch.state, batch.action, self.target(batch.next_state, batch.reward, batch.not_done))
