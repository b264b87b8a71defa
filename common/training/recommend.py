"""After offline training on the recommender env: the learner against simple recommenders."""
from __future__ import annotations

import os

import numpy as np
import torch

from common.envs.recsys import ItemRecommendation, compare_recommenders, top_k
from common.io import atomic_save_json

RECOMMENDATION_USERS = 100  # episodes (users) of the recommender comparison


def recommendation_report(cfg, algo: str, agent, sim: ItemRecommendation) -> dict:
    """The learner against a random and a most-popular recommender on the same users: mean clicks per
    episode, hit-rate@k, NDCG@k; ``results/{algo}_{setting}_recommendation.json`` and a table."""
    rng = np.random.default_rng(cfg.seed + 100)
    popular = sim.popular_items()[None]
    catalog = torch.as_tensor(sim.item_embeddings, device=agent.device)

    def learner(states, env):
        if getattr(agent, "items", None) is not None:
            return agent.recommend(states, env.k)
        return top_k(torch.as_tensor(agent.act_batch(states), device=agent.device), catalog, env.k).cpu().numpy()

    report = compare_recommenders(cfg.env, cfg.seed, RECOMMENDATION_USERS, {
        algo: learner,
        "random": lambda states, env: rng.permutation(len(env.item_embeddings))[None, :env.k],
        "most popular": lambda states, env: popular})
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{algo}_{cfg.setting}_recommendation.json"), report)
    metrics = [m for m in report[algo] if m not in ("clicks_std", "episodes")]
    print(f"{'recommender':<14}" + "".join(f"{m:>20}" for m in metrics) + f"   ({RECOMMENDATION_USERS} users)")
    for name, row in report.items():
        print(f"{name:<14}" + "".join(f"{row[m]:>20.3f}" for m in metrics))
    return report
