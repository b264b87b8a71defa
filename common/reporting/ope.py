"""Off-policy evaluation: ``python main.py --fqe --env ENV [--sqv | --views ... | --fqe_policy PREFIX]``.

Fitted Q Evaluation (Le, Voloshin & Yue 2019) of a trained greedy policy on the offline data it was
trained on (the setting's buffer or ``--dataset``): ``max_timesteps`` FQE updates, then the estimated
value of the evaluation episodes' initial states, V̂ = mean_k Q(s0_k, π(s0_k)), beside the discounted
return the policy actually gets from those same states (rewards as the learner sees them: clipped
where ``reward_clipping`` is on). Writes ``results/FQE_{policy}_{setting}.json``; checkpoints, resume,
the NaN guard and the training log are those of every training stage.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from common.io import atomic_save_json
from common.training.logs import RunLog
from common.training.runtime import evaluate, get_device, set_seed
from common.training.paths import save_config
from common.training.run import Run
from common.training.sources import load_buffer, open_env
from common.reporting.trained import check_acting_flags, trained_agent
from common.envs.vector import make_vec_env


def initial_states(cfg, episodes: int) -> np.ndarray:
    """The first states of the evaluation episodes (reset with seeds seed + 100 + k, as `evaluate` does)."""
    env = make_vec_env(cfg.env, cfg, episodes)
    try:
        return env.reset(seeds=[cfg.seed + 100 + k for k in range(episodes)])
    finally:
        env.close()


def fitted_q_evaluation(cfg, family, prefix: str) -> dict[str, Any]:
    check_acting_flags(cfg, prefix)
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    buffer = load_buffer(cfg, family, info, device, rng)
    policy = trained_agent(cfg, family, info, device, prefix)
    fqe = family.fqe_agent(info, cfg, device, policy.greedy_actions)
    stage = f"FQE_{prefix}"
    log = RunLog(cfg, stage)
    run = Run(cfg, stage, fqe, rng, log, buffer)
    run.resume()
    save_config(cfg, stage)
    start = time.time()
    try:
        run.train_loop(stage)
    finally:
        log.close()
    states = initial_states(cfg, cfg.eval_episodes)
    estimates = fqe.value(torch.as_tensor(states, device=device)).cpu().numpy().astype(float)
    returns = evaluate(policy.act_batch, lambda n: make_vec_env(cfg.env, cfg, n), cfg.seed, cfg.eval_episodes,
                       0.0, device, cfg.num_envs, discount=cfg.discount, clip_rewards=bool(cfg.reward_clipping))
    report = {"policy": prefix, "env": cfg.env, "seed": cfg.seed, "discount": cfg.discount, "updates": fqe.iterations,
              "episodes": cfg.eval_episodes, "estimated_value": float(estimates.mean()),
              "estimated_values": estimates.tolist(), "discounted_return": float(returns.mean()),
              "discounted_returns": returns.tolist(), "discounted_return_std": float(returns.std(ddof=1))
              if len(returns) > 1 else None, "data": cfg.dataset or "buffer", "seconds": time.time() - start}
    path = atomic_save_json(os.path.join(cfg.out_dir, "results", f"{stage}_{cfg.setting}.json"), report)
    run.finish()
    info.env.close()
    print(f"[{stage}] estimated initial-state value {report['estimated_value']:.3f} | measured discounted return "
          f"{report['discounted_return']:.3f} over {cfg.eval_episodes} episodes (γ = {cfg.discount}) → {path}")
    return report
