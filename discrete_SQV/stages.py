"""The three stages for discrete actions: train the behavioral DQN, generate a buffer, train BCQ/SQV.

Each stage takes the resolved config (a namespace with every flag, see `main.py`) and returns a
small summary dict; files follow the reference names (DESIGN §6).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from common.augment import GaussianNoise, RandomShift
from common.buffers import FrameStackBuffer, ReplayBuffer
from common.envs import ATARI, VECTOR, EnvInfo, make_env
from common.errors import UserError
from common.io import atomic_save_json, atomic_save_npy
from common.runtime import epsilon_greedy, evaluate, get_device, set_seed
from discrete_SQV.bcq import BCQ
from discrete_SQV.dqn import DQN
from discrete_SQV.sqv import SQV


# --- paths and commands -------------------------------------------------------------------------
def model_prefix(cfg, name: str) -> str:
    return os.path.join(cfg.out_dir, "models", f"{name}_{cfg.setting}")


def buffer_prefix(cfg) -> str:
    return os.path.join(cfg.out_dir, "buffers", f"{cfg.buffer_name}_{cfg.setting}")


def results_path(cfg, name: str) -> str:
    return os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}.npy")


def command(cfg, stage_flag: str) -> str:
    """The command line that runs ``stage_flag`` for this env/seed/output folder (for error messages)."""
    parts = ["python main.py", stage_flag, f"--env {cfg.env}", f"--seed {cfg.seed}"]
    if cfg.buffer_name != "Default" and stage_flag != "--train_behavioral":
        parts.append(f"--buffer_name {cfg.buffer_name}")
    if cfg.out_dir != ".":
        parts.append(f"--out_dir {cfg.out_dir}")
    return " ".join(p for p in parts if p)


# --- shared pieces ------------------------------------------------------------------------------
def make_buffer(info: EnvInfo, cfg, device, rng, capacity: int):
    if info.kind == ATARI:
        return FrameStackBuffer(info.state_shape, capacity, cfg.batch_size, device, rng)
    dtype = np.float32 if info.kind == VECTOR else np.uint8
    return ReplayBuffer(info.state_shape, capacity, cfg.batch_size, device, rng, state_dtype=dtype)


def make_augmentation(info: EnvInfo, cfg, buffer, device):
    """Random shift for images; Gaussian noise scaled by each state dimension's std for vectors."""
    if info.kind != VECTOR:
        return RandomShift(cfg.aug_pad)
    states = buffer.state[:buffer.size]
    std = torch.as_tensor(states.std(axis=0), dtype=torch.float32, device=device)
    return GaussianNoise(cfg.aug_noise * std)


def make_discrete_env(cfg) -> EnvInfo:
    """``make_env`` for this family: refuses an env whose actions are not discrete."""
    info = make_env(cfg.env, cfg)
    if not isinstance(info.action_space, gym.spaces.Discrete):
        info.env.close()
        raise UserError(f"env {cfg.env} has a continuous action space {info.action_space}; the discrete "
                        "family (DQN, BCQ, SQV) needs a Discrete one, and continuous BCQ is not in this release yet")
    return info


def learning_reward(cfg, reward: float) -> float:
    return float(np.clip(reward, -1.0, 1.0)) if cfg.reward_clipping else float(reward)


def run_evaluation(agent, info: EnvInfo, cfg) -> float:
    returns = evaluate(agent.act, lambda: make_env(cfg.env, cfg).env, info.action_space.n, cfg.seed,
                       cfg.eval_episodes, cfg.eval_eps)
    return float(returns.mean())


def save_config(cfg, name: str, extra: dict | None = None) -> None:
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}_config.json"),
                     {**vars(cfg), **(extra or {})})


def progress(total: int, desc: str):
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0, disable=None)


def interact(info: EnvInfo, cfg, buffer, steps: int, choose: Callable[[np.ndarray, int], int],
             after_step: Callable[[int], None], on_episode_start: Callable[[], None], bar) -> list[float]:
    """Run ``steps`` env steps, adding every transition to ``buffer``; returns finished episodes' raw returns.

    A truncated step is stored with not_done = 1 (it is not a terminal); the frame-stacked buffer
    then never samples it, because its s' frame is not stored (DESIGN §5).
    """
    env = info.env
    state, _ = env.reset(seed=cfg.seed)
    on_episode_start()
    first, episode_return, returns = True, 0.0, []
    for t in range(steps):
        action = choose(state, t)
        next_state, reward, terminated, truncated, _ = env.step(action)
        episode_return += float(reward)
        buffer.add(state, action, next_state, learning_reward(cfg, reward), 0.0 if terminated else 1.0, first)
        state, first = next_state, False
        after_step(t)
        if terminated or truncated:
            returns.append(episode_return)
            bar.set_postfix(episodes=len(returns), last_return=f"{episode_return:.1f}", refresh=False)
            state, _ = env.reset()
            on_episode_start()
            first, episode_return = True, 0.0
        bar.update()
    return returns


def _log_eval(bar, label: str, step: int, value: float, agent=None) -> None:
    extra = f"  {agent.loss_summary()}" if agent is not None and agent.last_loss else ""
    bar.write(f"[{label}] step {step}: eval return {value:.2f}{extra}")


# --- stage 1 ------------------------------------------------------------------------------------
def train_behavioral(cfg) -> dict[str, Any]:
    """Train the behavioral DQN online; save ``models/behavioral_{setting}_*`` and its eval returns."""
    info = make_discrete_env(cfg)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = DQN(info.kind, info.state_shape, info.action_space.n, cfg, device)
    buffer = make_buffer(info, cfg, device, rng, cfg.buffer_size)
    save_config(cfg, "behavioral")
    evaluations: list[float] = []
    n = info.action_space.n
    start = time.time()

    def choose(state, t):
        if t < cfg.start_timesteps:
            return int(rng.integers(n))
        return epsilon_greedy(agent.act, state, agent.epsilon(), n, rng)

    def after_step(t):
        if t >= cfg.start_timesteps and (t + 1) % cfg.train_freq == 0:
            agent.train(buffer)
        if (t + 1) % cfg.eval_freq == 0:
            evaluations.append(run_evaluation(agent, info, cfg))
            atomic_save_npy(results_path(cfg, "behavioral"), evaluations)
            agent.save(model_prefix(cfg, "behavioral"))
            _log_eval(bar, "behavioral", t + 1, evaluations[-1], agent)

    with progress(cfg.max_timesteps, f"behavioral DQN {cfg.env}") as bar:
        returns = interact(info, cfg, buffer, cfg.max_timesteps, choose, after_step, lambda: None, bar)
    if cfg.max_timesteps % cfg.eval_freq != 0 or not evaluations:
        evaluations.append(run_evaluation(agent, info, cfg))
        atomic_save_npy(results_path(cfg, "behavioral"), evaluations)
        agent.save(model_prefix(cfg, "behavioral"))
    info.env.close()
    return {"stage": "behavioral", "final_return": evaluations[-1], "evaluations": evaluations,
            "updates": agent.iterations, "episodes": len(returns), "seconds": time.time() - start}


# --- stage 2 ------------------------------------------------------------------------------------
def generate_buffer(cfg) -> dict[str, Any]:
    """Roll the behavioral agent out with noise for ``max_timesteps`` steps and save the buffer.

    Each episode is low-noise with probability ``low_noise_p`` (only ``eval_eps`` random actions);
    otherwise an action is uniformly random with probability ``rand_action_p`` in all.
    Writes ``buffers/{buffer_name}_{setting}_*``, ``results/buffer_performance_{setting}.npy``
    (the behavioral policy evaluated as in the reference code) and
    ``results/buffer_returns_{setting}.npy`` (raw returns of the buffer's finished episodes).
    """
    info = make_discrete_env(cfg)
    prefix = model_prefix(cfg, "behavioral")
    if not os.path.exists(f"{prefix}_Q"):
        raise UserError(f"no behavioral model at {prefix}_Q; train one with: {command(cfg, '--train_behavioral')}")
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = DQN(info.kind, info.state_shape, info.action_space.n, cfg, device)
    try:
        agent.load(prefix)
    except (RuntimeError, ValueError) as err:
        raise UserError(f"behavioral model {prefix}_Q does not fit env {cfg.env} ({str(err).splitlines()[0]}); "
                        f"retrain it with: {command(cfg, '--train_behavioral')}") from None
    buffer = make_buffer(info, cfg, device, rng, min(cfg.buffer_size, cfg.max_timesteps))
    save_config(cfg, f"buffer_{cfg.buffer_name}")
    n = info.action_space.n
    episode = {"low_noise": False}
    start = time.time()

    def new_episode():
        episode["low_noise"] = rng.random() < cfg.low_noise_p

    def choose(state, t):
        if not episode["low_noise"] and rng.random() < cfg.rand_action_p - cfg.eval_eps:
            return int(rng.integers(n))
        return epsilon_greedy(agent.act, state, cfg.eval_eps, n, rng)

    with progress(cfg.max_timesteps, f"buffer {cfg.env}") as bar:
        returns = interact(info, cfg, buffer, cfg.max_timesteps, choose, lambda t: None, new_episode, bar)
    performance = run_evaluation(agent, info, cfg)
    buffer.save(buffer_prefix(cfg))
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
def train_offline(cfg, algo: str = "BCQ") -> dict[str, Any]:
    """Train BCQ or SQV on the saved buffer for ``max_timesteps`` iterations; save ``results/{algo}_{setting}.npy``."""
    info = make_discrete_env(cfg)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    buffer = make_buffer(info, cfg, device, rng, 1)
    buffer.load(buffer_prefix(cfg), how_to_create=command(cfg, "--generate_buffer"))
    if algo == "SQV":
        agent = SQV(info.kind, info.state_shape, info.action_space.n, cfg, device)
        agent.augment = make_augmentation(info, cfg, buffer, device)
    else:
        agent = BCQ(info.kind, info.state_shape, info.action_space.n, cfg, device)
    save_config(cfg, algo, {"augmentation": repr(getattr(agent, "augment", None))})
    evaluations: list[float] = []
    start = time.time()
    with progress(cfg.max_timesteps, f"{algo} {cfg.env}") as bar:
        while agent.iterations < cfg.max_timesteps:
            for _ in range(min(cfg.eval_freq, cfg.max_timesteps - agent.iterations)):
                agent.train(buffer)
                bar.update()
            evaluations.append(run_evaluation(agent, info, cfg))
            atomic_save_npy(results_path(cfg, algo), evaluations)
            bar.set_postfix(last_eval=f"{evaluations[-1]:.1f}", refresh=False)
            _log_eval(bar, algo, agent.iterations, evaluations[-1], agent)
    agent.save(model_prefix(cfg, algo))
    info.env.close()
    return {"stage": algo, "final_return": evaluations[-1], "evaluations": evaluations,
            "updates": agent.iterations, "seconds": time.time() - start}
