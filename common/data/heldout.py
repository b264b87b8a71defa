"""The held-out evaluation of a prepared log (`common.data.interactions`).

Each user's state is its last N training items; a recommender ranks the catalog (items the user
consumed in training excluded); HR@K is the fraction of users with a held-out item in the top K,
NDCG@K = Σ 1/log2(rank + 2) over held-out items in the top K, divided by the ideal
Σ_{i < min(k, K)} 1/log2(i + 2). Baselines on the same users: random, most popular (training counts)
and item-kNN (cosine of each item to the user's N history items, summed, on the same embeddings). The
env `InteractionLog` serves the same held-out users to the training loop's evaluation: one step per
user, reward = held-out items among the top ``k`` = 10 recommended.
"""
from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import torch

from common.envs.recsys import unit
from common.errors import UserError
from common.io import atomic_save_json

CUTOFFS = (5, 10, 20)
EVAL_K = 10  # the env's list length: in-training evaluation reports held-out hits in the top 10


class HeldOut:
    """The held-out evaluation of a prepared log: ``metrics(scores)`` and the three baselines."""

    def __init__(self, prefix: str):
        load = lambda name: np.load(f"{prefix}_{name}.npy")  # noqa: E731
        self.embeddings, self.history, self.heldout = load("item_embeddings"), load("history"), load("heldout")
        self.seen_offsets, self.seen_items, self.popularity = load("seen_offsets"), load("seen_items"), load("popularity")
        self.states = self.embeddings[self.history].reshape(len(self.history), -1)  # each user's state

    def seen_mask(self, users: np.ndarray) -> np.ndarray:
        mask = np.zeros((len(users), len(self.embeddings)), bool)
        for row, user in enumerate(users):
            mask[row, self.seen_items[self.seen_offsets[user]:self.seen_offsets[user + 1]]] = True
        return mask

    def top(self, scores: np.ndarray, users: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` best unseen items per user (ties to the lower index)."""
        scores = np.where(self.seen_mask(users), -np.inf, scores)
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]

    def metrics(self, score: callable, chunk: int = 1024) -> dict[str, float]:
        """HR@K and NDCG@K (K in `CUTOFFS`) of ``score(users) → (len(users), items)`` scores."""
        tops = []
        for first in range(0, len(self.history), chunk):
            users = np.arange(first, min(first + chunk, len(self.history)))
            tops.append(self.top(score(users), users, max(CUTOFFS)))
        return ranking_metrics(np.concatenate(tops), self.heldout)

    def baselines(self, seed: int) -> dict[str, callable]:
        rng = np.random.default_rng(seed)
        unit_items = self.embeddings
        return {
            "random": lambda users: rng.random((len(users), len(unit_items))),
            "most popular": lambda users: np.broadcast_to(self.popularity.astype(float), (len(users), len(unit_items))),
            "item-kNN": lambda users: (unit_items[self.history[users]] @ unit_items.T).sum(1),
        }


def ranking_metrics(top: np.ndarray, heldout: np.ndarray, cutoffs=CUTOFFS) -> dict[str, float]:
    """HR@K and NDCG@K of ranked lists ``top`` (U, ≥K) against each user's held-out items (U, k; −1 =
    an item outside the catalog, never hit but counted in the ideal DCG)."""
    hits = (top[:, :, None] == heldout[:, None, :]) & (heldout[:, None, :] >= 0)
    relevant = hits.any(2)                                           # (U, K): rank r holds a held-out item
    gains = 1.0 / np.log2(np.arange(top.shape[1]) + 2)
    out = {}
    for k in cutoffs:
        ideal = gains[:min(heldout.shape[1], k)].sum()
        out[f"hr@{k}"] = float(relevant[:, :k].any(1).mean())
        out[f"ndcg@{k}"] = float((relevant[:, :k] * gains[:k]).sum(1).mean() / ideal)
    return out


def report(cfg, algo: str, agent, env: "InteractionLog") -> dict:
    """The learner against random, most-popular and item-kNN on the held-out items: a table and
    ``results/{algo}_{setting}_heldout.json``."""
    catalog = unit(torch.as_tensor(env.item_embeddings, device=agent.device))

    def learner(users):
        actions = torch.as_tensor(agent.act_batch(env.data.states[users]), device=agent.device)
        return (unit(actions) @ catalog.T).cpu().numpy()

    rows = {algo: env.data.metrics(learner)}
    rows.update({name: env.data.metrics(score) for name, score in env.data.baselines(cfg.seed + 100).items()})
    result = {"users": len(env.data.history), "holdout": int(env.data.heldout.shape[1]), "metrics": rows}
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{algo}_{cfg.setting}_heldout.json"), result)
    names = list(rows[algo])
    print(f"{'recommender':<14}" + "".join(f"{m:>9}" for m in names) + f"   ({result['users']} held-out users, "
          f"last {result['holdout']} items each)")
    for name, row in rows.items():
        print(f"{name:<14}" + "".join(f"{row[m]:>9.4f}" for m in names))
    return result


class InteractionLog(gym.Env):
    """The held-out users of a prepared log as an env: an episode is one user (drawn by the reset
    seed); the observation is the user's last N training items' embeddings, newest first; the action
    a vector in the embedding space; the reward the number of the user's held-out items among the
    ``k`` unseen items most cosine-similar to it; then the episode ends. Built without a log (to
    read its action space), it is a one-dimensional placeholder."""

    metadata = {"render_modes": []}

    def __init__(self, cache: str | None = None, k: int = EVAL_K):
        self.k = k
        self.data = HeldOut(cache) if cache else None
        dim = self.data.embeddings.shape[1] if cache else 1
        width = self.data.history.shape[1] * dim if cache else 1
        self.item_embeddings = self.data.embeddings if cache else np.ones((k, 1), np.float32)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (width,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.user = 0

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if self.data is None:
            raise UserError("InteractionLog-v0 serves a log: give --dataset interactions:FILE")
        self.user = int(self.np_random.integers(len(self.data.history)))
        return self.data.states[self.user].astype(np.float32), {}

    def step(self, action):
        action = np.asarray(action, np.float32).reshape(-1)
        scores = self.item_embeddings @ (action / max(float(np.linalg.norm(action)), 1e-12))
        users = np.array([self.user])
        top = self.data.top(scores[None], users, self.k)[0]
        reward = float(np.isin(top, self.data.heldout[self.user]).sum())
        return self.data.states[self.user].astype(np.float32), reward, True, False, {"recommended": top}
