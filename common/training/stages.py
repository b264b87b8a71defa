"""The stages, written once for both families (discrete: DQN → BCQ/SQV; continuous: DDPG → BCQ/SQV).

Each stage takes the resolved config (a namespace with every flag, see `main.py`) and a *family*
module (`discrete_SQV.family` or `continuous_BCQ.family`) that builds the agents and the buffer.
Agents act on batches of states, one per env: ``act_batch(states)`` (greedy),
``explore_actions(states, rng, space)`` (behavioral training), ``buffer_actions(states, rng,
low_noise, space)`` (buffer generation); and provide ``train(buffer)``, ``save``/``load`` and
``model_files(prefix)``. Files follow the reference names (docs/DESIGN.md §6); the pieces live beside this
module: `paths`, `sources` (env and offline data), `rollout`, `run` (checkpoints, resume, guard,
evaluation), `progress`, `logs`.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from common.data import datasets, interactions, manifest
from common.data.interactions import InteractionLog
from common.envs.make import EnvInfo
from common.envs.recsys import ItemRecommendation
from common.envs.vector import make_vec_env
from common.errors import UserError
from common.io import atomic_save_npy
from common.training import checkpoint
from common.training.guards import stop_on_signals
from common.training.logs import RunLog
from common.training.paths import buffer_prefix, command, episodes_path, model_prefix, results_path, save_config
from common.training.progress import progress
from common.training.recommend import recommendation_report
from common.training.rollout import Rollout, interact
from common.training.run import Run, run_evaluation, train_step
from common.training.runtime import get_device, random_actions, set_seed
from common.training.sources import load_buffer, open_env


# --- stage 1 (and SQIL) --------------------------------------------------------------------------
class OnlineRollout(Rollout):
    """Online learning: ε-greedy actions (uniform for the first ``start_timesteps`` steps); after
    each step, an update every ``train_freq`` steps, an evaluation every ``eval_freq`` steps, and
    the run's checkpoint and stop handling."""

    def __init__(self, run: Run, info: EnvInfo, bar):
        super().__init__(run.cfg, run.buffers["buffer"], bar)
        self.run, self.space = run, info.action_space
        self.returns = run.episode_returns

    def actions(self, states: np.ndarray, t: int) -> np.ndarray:
        if t < self.cfg.start_timesteps:
            return random_actions(self.space, self.run.rng, len(states))
        return self.run.agent.explore_actions(states, self.run.rng, self.space)

    def after_step(self, t: int) -> None:
        cfg, run = self.cfg, self.run
        if t >= cfg.start_timesteps and (t + 1) % cfg.train_freq == 0 and run.data.size > 1:
            train_step(run.agent, run.data, run.log, run)
        if (t + 1) % cfg.eval_freq == 0 or t + 1 == cfg.max_timesteps:
            run.evaluate(t + 1, self.bar, results_path(cfg, run.stage))
            atomic_save_npy(episodes_path(cfg, run.stage), run.episode_returns)
            run.agent.save(model_prefix(cfg, run.stage))
        run.after(t + 1)


def train_online(run: Run, info: EnvInfo, label: str) -> dict[str, Any]:
    """Learn online with `OnlineRollout` on one env (the agent learns between consecutive steps),
    training on batches from ``run.data``; evaluations go to ``results/{stage}_{setting}.npy`` and the
    model to ``models/{stage}_{setting}_*``."""
    cfg = run.cfg
    first_step = run.resume()
    save_config(cfg, run.stage)
    start = time.time()
    vec = make_vec_env(cfg.env, cfg, 1)
    try:
        with stop_on_signals() as run.stop, progress(cfg.max_timesteps, f"{label} {cfg.env}") as bar:
            bar.update(first_step)
            interact(vec, OnlineRollout(run, info, bar), cfg.max_timesteps, first_step)
        run.finish()
    finally:
        run.log.close()  # flush TensorBoard events even when interrupted
        vec.close()
    info.env.close()
    return {"stage": run.stage, "final_return": run.evaluations[-1], "evaluations": run.evaluations,
            "updates": run.agent.iterations, "episodes": len(run.episode_returns), "seconds": time.time() - start}


def train_behavioral(cfg, family) -> dict[str, Any]:
    """Train the behavioral agent online; save ``models/behavioral_{setting}_*`` and its eval returns."""
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = family.behavioral_agent(info, cfg, device)
    buffer = family.make_buffer(info, cfg, device, rng, cfg.buffer_size)
    run = Run(cfg, "behavioral", agent, rng, RunLog(cfg, "behavioral"), buffer, {"buffer": buffer})
    return train_online(run, info, f"behavioral {family.BEHAVIORAL}")


def train_sqil(cfg, family) -> dict[str, Any]:
    """SQIL: the generated buffer as demonstrations (reward 1), the agent's own steps (reward 0);
    saves ``results/SQIL_{setting}.npy`` and ``models/SQIL_{setting}_*``."""
    if not hasattr(family, "sqil_agent"):
        raise UserError(f"--sqil needs discrete actions; {cfg.env} has a Box action space")
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    demos = load_buffer(cfg, family, info, device, rng)
    online = family.make_buffer(info, cfg, device, rng, cfg.buffer_size)
    agent = family.sqil_agent(info, cfg, device)
    mix = family.DemoMix(demos, online, cfg.batch_size)
    return train_online(Run(cfg, "SQIL", agent, rng, RunLog(cfg, "SQIL"), mix, {"buffer": online}), info, "SQIL")


# --- stage 2 ------------------------------------------------------------------------------------
class BufferRollout(Rollout):
    """Buffer generation: the behavioral agent's noisy actions; each episode is a low-noise one with
    probability ``low_noise_p``."""

    def __init__(self, cfg, buffer, bar, actor: tuple[Any, np.random.Generator, Any]):
        """``actor``: the agent, the run's generator and the env's action space."""
        super().__init__(cfg, buffer, bar)
        self.agent, self.rng, self.space = actor
        self.low_noise = np.zeros(cfg.num_envs, dtype=bool)

    def actions(self, states: np.ndarray, t: int) -> np.ndarray:
        return self.agent.buffer_actions(states, self.rng, self.low_noise, self.space)

    def episode_start(self, env: int) -> None:
        self.low_noise[env] = self.cfg.low_noise_p is not None and self.rng.random() < self.cfg.low_noise_p


def behavioral_model(cfg, family, info: EnvInfo, device):
    """The trained behavioral agent, or a clear error when it is missing, unfinished or damaged."""
    prefix = model_prefix(cfg, "behavioral")
    unfinished = checkpoint.newest(cfg, "behavioral")
    if unfinished:
        raise UserError(f"the behavioral training of {cfg.setting} was interrupted (its checkpoint {unfinished} is still "
                        f"there), so {prefix}_* is an unfinished agent's; finish it with: "
                        f"{command(cfg, '--train_behavioral')} --resume (or train it again without --resume)")
    agent = family.behavioral_agent(info, cfg, device)
    agent.load_trained(prefix, "behavioral", cfg.env, command(cfg, "--train_behavioral"))
    return agent


def generate_buffer(cfg, family) -> dict[str, Any]:
    """Roll the behavioral agent out with noise for ``max_timesteps`` steps and save the buffer.

    Writes ``buffers/{buffer_name}_{setting}_*``, ``results/buffer_performance_{setting}.npy``
    (the behavioral policy evaluated, as in the reference code) and
    ``results/buffer_returns_{setting}.npy`` (raw returns of the buffer's finished episodes).
    """
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = behavioral_model(cfg, family, info, device)
    buffer = family.make_buffer(info, cfg, device, rng, min(cfg.buffer_size, cfg.max_timesteps))
    manifest.check_free_space(os.path.dirname(buffer_prefix(cfg)), buffer.capacity * buffer.bytes_per_transition(),
                              f"a {buffer.capacity}-transition buffer")
    vec = make_vec_env(cfg.env, cfg, cfg.num_envs)
    start = time.time()
    with progress(cfg.max_timesteps, f"buffer {cfg.env} ({cfg.num_envs} envs)") as bar:
        returns = interact(vec, BufferRollout(cfg, buffer, bar, (agent, rng, info.action_space)), cfg.max_timesteps)
    vec.close()
    log = RunLog(cfg, "buffer_performance")
    performance = run_evaluation(agent, cfg, log, cfg.max_timesteps)
    log.close()
    prefix = buffer_prefix(cfg)
    manifest.begin(prefix)
    manifest.finish(prefix, buffer.save(prefix), cfg, info, buffer)
    save_config(cfg, f"buffer_{cfg.buffer_name}")  # once the buffer it describes has landed
    atomic_save_npy(results_path(cfg, "buffer_performance"), [performance])
    atomic_save_npy(results_path(cfg, "buffer_returns"), returns)
    info.env.close()
    summary = {"stage": "buffer", "behavioral_eval": performance, "episodes": len(returns),
               "buffer_return": float(np.mean(returns)) if returns else float("nan"),
               "transitions": buffer.size, "seconds": time.time() - start}
    print(f"[buffer] {buffer.size} transitions, {len(returns)} finished episodes, mean episode return "
          f"{summary['buffer_return']:.2f}; behavioral policy eval {performance:.2f}")
    return summary


# --- stage 3 ------------------------------------------------------------------------------------
def export_minari(cfg, family) -> int:
    """``--export_minari DATASET_ID``: this setting's saved buffer as a Minari dataset."""
    info = open_env(cfg, family)
    buffer = load_buffer(cfg, family, info, get_device("cpu"), np.random.default_rng(cfg.seed))
    if not hasattr(buffer, "next_state"):
        raise UserError("--export_minari writes whole-transition buffers (vector and MinAtar states); Atari frame "
                        "stacks are not supported")
    episodes = datasets.export_minari(buffer, cfg.export_minari, cfg.env)
    print(f"[export] {buffer.size} transitions in {episodes} episodes written as Minari dataset {cfg.export_minari}")
    info.env.close()
    return episodes


def train_offline(cfg, family, algo: str = "BCQ") -> dict[str, Any]:
    """Train BCQ or SQV on the saved buffer for ``max_timesteps`` iterations; save ``results/{algo}_{setting}.npy``."""
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    buffer = load_buffer(cfg, family, info, device, rng)
    agent = family.offline_agent(algo, info, cfg, device, buffer)
    log = RunLog(cfg, algo)
    run = Run(cfg, algo, agent, rng, log, buffer)
    run.resume()
    save_config(cfg, algo, {"augmentation": repr(getattr(agent, "augment", None))})
    start = time.time()
    try:
        run.train_loop(algo, results_path(cfg, algo))
        agent.save(model_prefix(cfg, algo))
        run.finish()  # the checkpoints go only once the final model is on disk
    finally:
        log.close()  # flush TensorBoard events even when interrupted
    sim = getattr(info.env, "unwrapped", info.env)  # (the Atari preprocessing is no gymnasium wrapper)
    if isinstance(sim, ItemRecommendation):
        recommendation_report(cfg, algo, agent, sim)
    elif isinstance(sim, InteractionLog):
        interactions.report(cfg, algo, agent, sim)
    info.env.close()
    return {"stage": algo, "final_return": run.evaluations[-1], "evaluations": run.evaluations,
            "updates": agent.iterations, "seconds": time.time() - start}
