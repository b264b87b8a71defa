"""Recommendation in an item-embedding space: the simulator, top-k retrieval and ranking metrics.

`ItemRecommendation` (registered as ``ItemRecommendation-v0``) is a small seeded simulator, no data
downloaded: a catalog of ``num_items`` items with fixed unit-norm embeddings (drawn from
``catalog_seed``, the same in every episode) and a per-item popularity; a user with a unit-norm
preference vector p drawn at each reset that drifts slowly. The observation is the embeddings of
the user's last ``history`` consumed items, newest first, flattened. The action is a vector in the
embedding space; the env recommends the ``k`` items most cosine-similar to it (`top_k`), and the
user clicks each recommended item j independently with probability
``sigmoid(click_scale · p·e_j + popularity_j + click_bias)``. Reward = number of clicks; the clicked
items, in rank order, become the newest consumed items. Episodes last ``episode_length`` steps
(then ``truncated``: the state carries no clock, so the end is a time limit, not a terminal). ``step_items`` recommends an explicit list (baseline recommenders).
Each step's info holds the recommended list, the clicks and the user's ``best_items`` (the k
highest click probabilities), from which `ranking_metrics` computes hit-rate@k and NDCG@k.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
import torch

from common.errors import UserError


def top_k(actions: torch.Tensor, embeddings: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, k) of the ``k`` items most cosine-similar to each action (B, d), best first.

    Both sides are normalized (an all-zero vector scores 0 against everything); equal scores go to
    the lower item index, so the result is deterministic.
    """
    n = embeddings.shape[0]
    if not 1 <= k <= n:
        raise UserError(f"cannot recommend k={k} items from a catalog of {n}; use 1 <= k <= {n}")
    scores = unit(actions) @ unit(embeddings).T
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


def unit(vectors: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(vectors, dim=-1)


def ranking_metrics(recommended: np.ndarray, best_item: np.ndarray) -> tuple[float, float]:
    """Hit-rate@k and NDCG@k of recommended lists (N, k) against the user's best item at each step
    (N,): the hit rate counts the steps whose best item is recommended, NDCG credits it with
    1 / log2(rank + 2) at 0-based rank ``rank`` (one relevant item, so the ideal DCG is 1)."""
    hits = recommended == np.asarray(best_item)[:, None]
    rank = np.argmax(hits, axis=1)
    found = hits.any(axis=1)
    return float(found.mean()), float(np.where(found, 1.0 / np.log2(rank + 2), 0.0).mean())


class ItemRecommendation(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, num_items: int = 100, dim: int = 8, history: int = 5, k: int = 5, catalog_seed: int = 0,
                 drift: float = 0.05, click_scale: float = 8.0, click_bias: float = -4.0,
                 popularity_std: float = 0.5, episode_length: int = 20):
        if not 1 <= k <= num_items:
            raise UserError(f"ItemRecommendation: k={k} must be between 1 and num_items={num_items}")
        catalog = np.random.default_rng(catalog_seed)
        embeddings = catalog.normal(size=(num_items, dim))
        self.item_embeddings = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)
        self.popularity = catalog.normal(0.0, popularity_std, num_items)
        self.history, self.k, self.drift, self.episode_length = int(history), int(k), float(drift), int(episode_length)
        self.click_scale, self.click_bias = float(click_scale), float(click_bias)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (self.history * dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self._items = torch.from_numpy(self.item_embeddings)
        self.preference = np.zeros(dim)
        self.consumed: list[int] = []
        self.steps = 0

    def click_probabilities(self) -> np.ndarray:
        logits = self.click_scale * self.item_embeddings @ self.preference + self.popularity + self.click_bias
        return 1.0 / (1.0 + np.exp(-logits))

    def best_items(self) -> np.ndarray:
        """The k items this user is most likely to click now, best first."""
        return np.argsort(-self.click_probabilities(), kind="stable")[:self.k]

    def popular_items(self, users: int = 2000, seed: int = 12345) -> np.ndarray:
        """The k items with the highest click probability averaged over ``users`` fresh users: the
        most-popular recommender, computed from the simulator itself (an oracle of popularity)."""
        rng = np.random.default_rng(seed)
        prefs = rng.normal(size=(users, self.item_embeddings.shape[1]))
        prefs /= np.linalg.norm(prefs, axis=1, keepdims=True)
        logits = self.click_scale * prefs @ self.item_embeddings.T + self.popularity + self.click_bias
        return np.argsort(-(1.0 / (1.0 + np.exp(-logits))).mean(0), kind="stable")[:self.k]

    def observe(self) -> np.ndarray:
        return self.item_embeddings[self.consumed[:self.history]].reshape(-1).copy()

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        preference = self.np_random.normal(size=self.item_embeddings.shape[1])
        self.preference = preference / np.linalg.norm(preference)
        self.steps = 0
        probs = self.click_probabilities()  # the history: items this user consumed before
        self.consumed = list(self.np_random.choice(len(probs), self.history, replace=False, p=probs / probs.sum()))
        return self.observe(), {}

    def step(self, action):
        action = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1)
        return self.step_items(top_k(action, self._items, self.k)[0].numpy())

    def step_items(self, items: np.ndarray):
        """Recommend an explicit list of item indices, best first."""
        items = np.asarray(items, dtype=np.int64)
        probs = self.click_probabilities()
        best = self.best_items()
        clicked = self.np_random.random(len(items)) < probs[items]
        self.consumed = [int(i) for i in items[clicked]][::-1] + self.consumed
        self.consumed = self.consumed[:self.history]
        noise = self.np_random.normal(size=self.preference.shape) * self.drift / np.sqrt(len(self.preference))
        self.preference = (self.preference + noise) / np.linalg.norm(self.preference + noise)
        self.steps += 1
        info = {"recommended": items, "clicked": clicked, "best_items": best}
        return self.observe(), float(clicked.sum()), False, self.steps >= self.episode_length, info


def compare_recommenders(env_id: str, seed: int, episodes: int,
                         recommenders: dict[str, Callable[[np.ndarray, ItemRecommendation], np.ndarray]]) -> dict:
    """Mean clicks per episode, hit-rate@k and NDCG@k of each recommender over the same ``episodes``
    users (episode e is seeded ``seed + 100 + e``, as evaluation is). A recommender maps a state (a
    batch of one) and the env to a (1, k) array of item indices, best first."""
    report = {}
    for name, recommend in recommenders.items():
        env = gym.make(env_id)
        sim: ItemRecommendation = env.unwrapped
        clicks, lists, best = [], [], []
        for episode in range(episodes):
            state, _ = env.reset(seed=seed + 100 + episode)
            total, done = 0.0, False
            while not done:
                items = np.asarray(recommend(state[None], sim))[0]
                best.append(sim.best_items()[0])
                lists.append(items)
                state, reward, terminated, truncated, _ = sim.step_items(items)
                total += reward
                done = terminated or truncated
            clicks.append(total)
        env.close()
        hit_rate, ndcg = ranking_metrics(np.array(lists), np.array(best))
        report[name] = {"clicks_per_episode": float(np.mean(clicks)), "clicks_std": float(np.std(clicks)),
                        f"hit_rate@{sim.k}": hit_rate, f"ndcg@{sim.k}": ndcg, "episodes": episodes}
    return report
