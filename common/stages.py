"""The three stages, written once for both families (discrete: DQN → BCQ/SQV; continuous: DDPG → BCQ/SQV).

Each stage takes the resolved config (a namespace with every flag, see `main.py`) and a *family*
module (`discrete_SQV.family` or `continuous_BCQ.family`) that builds the agents and the buffer.
Agents provide ``act(state)`` (greedy), ``explore_action(state, rng)`` (behavioral training),
``buffer_action(state, rng, low_noise)`` (buffer generation), ``train(buffer)``, ``save``/``load``
and ``model_files(prefix)``. Files follow the reference names (DESIGN §6).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from common.envs import EnvInfo, make_env
from common.errors import UserError
from common.io import atomic_save_json, atomic_save_npy
from common.logs import RunLog
from common.runtime import evaluate, get_device, random_action, set_seed


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
    if cfg.buffer_name != cfg.default_buffer_name and stage_flag != "--train_behavioral":
        parts.append(f"--buffer_name {cfg.buffer_name}")
    if cfg.out_dir != ".":
        parts.append(f"--out_dir {cfg.out_dir}")
    return " ".join(parts)


# --- shared pieces ------------------------------------------------------------------------------
def learning_reward(cfg, reward: float) -> float:
    return float(np.clip(reward, -1.0, 1.0)) if cfg.reward_clipping else float(reward)


def run_evaluation(agent, cfg, log: RunLog | None = None, step: int = 0) -> float:
    """Evaluate the agent; log the episode returns; return their mean."""
    returns = evaluate(agent.act, lambda: make_env(cfg.env, cfg).env, cfg.seed, cfg.eval_episodes,
                       cfg.eval_eps or 0.0, agent.device)
    if log is not None:
        log.evaluation(step, returns)
    return float(returns.mean())


def train_step(agent, buffer, log: RunLog) -> None:
    """One update; every ``log_freq`` updates the learner's scalars go to the training log."""
    agent.train(buffer)
    if agent.iterations % log.every == 0:
        log.training(agent.iterations, agent.scalars())


def save_config(cfg, name: str, extra: dict | None = None) -> None:
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}_config.json"),
                     {**vars(cfg), **(extra or {})})


def progress(total: int, desc: str):
    """A progress bar (steps/s and the latest figures); silent when stderr is not a terminal."""
    bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0, disable=None)
    bar.notes = {}
    return bar


def note(bar, **values) -> None:
    """Add figures to the bar's postfix, keeping the others."""
    bar.notes.update(values)
    bar.set_postfix(bar.notes, refresh=False)


def log_eval(bar, label: str, step: int, value: float, agent=None) -> None:
    note(bar, last_eval=f"{value:.1f}")
    extra = f"  {agent.loss_summary()}" if agent is not None and agent.last_loss else ""
    bar.write(f"[{label}] step {step}: eval return {value:.2f}{extra}")


def interact(info: EnvInfo, cfg, buffer, steps: int, choose: Callable[[np.ndarray, int], Any],
             after_step: Callable[[int], None], on_episode_start: Callable[[], None], bar) -> list[float]:
    """Run ``steps`` env steps, adding every transition to ``buffer``; returns finished episodes' raw returns.

    not_done is 0 only on true terminals (``terminated``), never on ``truncated``. A truncated step
    is stored too: whole-transition buffers keep its real s', and the frame-stacked buffer never
    samples it, because its s' frame is not stored (DESIGN §5).
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
            note(bar, episodes=len(returns), last_return=f"{episode_return:.1f}")
            state, _ = env.reset()
            on_episode_start()
            first, episode_return = True, 0.0
        bar.update()
    return returns


def open_env(cfg, family) -> EnvInfo:
    info = make_env(cfg.env, cfg)
    family.check_env(info, cfg)
    return info


# --- stage 1 ------------------------------------------------------------------------------------
def train_behavioral(cfg, family) -> dict[str, Any]:
    """Train the behavioral agent online; save ``models/behavioral_{setting}_*`` and its eval returns."""
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = family.behavioral_agent(info, cfg, device)
    buffer = family.make_buffer(info, cfg, device, rng, cfg.buffer_size)
    save_config(cfg, "behavioral")
    log = RunLog(cfg, "behavioral")
    evaluations: list[float] = []
    start = time.time()

    def choose(state, t):
        return random_action(info.action_space, rng) if t < cfg.start_timesteps else agent.explore_action(state, rng)

    def after_step(t):
        if t >= cfg.start_timesteps and (t + 1) % cfg.train_freq == 0 and buffer.size > 1:
            train_step(agent, buffer, log)
        if (t + 1) % cfg.eval_freq == 0:
            evaluations.append(run_evaluation(agent, cfg, log, t + 1))
            atomic_save_npy(results_path(cfg, "behavioral"), evaluations)
            agent.save(model_prefix(cfg, "behavioral"))
            log_eval(bar, "behavioral", t + 1, evaluations[-1], agent)

    try:
        with progress(cfg.max_timesteps, f"behavioral {family.BEHAVIORAL} {cfg.env}") as bar:
            returns = interact(info, cfg, buffer, cfg.max_timesteps, choose, after_step, lambda: None, bar)
        if cfg.max_timesteps % cfg.eval_freq != 0:
            evaluations.append(run_evaluation(agent, cfg, log, cfg.max_timesteps))
            atomic_save_npy(results_path(cfg, "behavioral"), evaluations)
            agent.save(model_prefix(cfg, "behavioral"))
    finally:
        log.close()  # flush TensorBoard events even when interrupted
    info.env.close()
    return {"stage": "behavioral", "final_return": evaluations[-1], "evaluations": evaluations,
            "updates": agent.iterations, "episodes": len(returns), "seconds": time.time() - start}


# --- stage 2 ------------------------------------------------------------------------------------
def generate_buffer(cfg, family) -> dict[str, Any]:
    """Roll the behavioral agent out with noise for ``max_timesteps`` steps and save the buffer.

    Writes ``buffers/{buffer_name}_{setting}_*``, ``results/buffer_performance_{setting}.npy``
    (the behavioral policy evaluated, as in the reference code) and
    ``results/buffer_returns_{setting}.npy`` (raw returns of the buffer's finished episodes).
    """
    info = open_env(cfg, family)
    prefix = model_prefix(cfg, "behavioral")
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = family.behavioral_agent(info, cfg, device)
    missing = [path for path in agent.model_files(prefix) if not os.path.exists(path)]
    if missing:
        raise UserError(f"no behavioral model at {missing[0]}; train one with: {command(cfg, '--train_behavioral')}")
    try:
        agent.load(prefix)
    except (RuntimeError, ValueError, KeyError) as err:
        raise UserError(f"behavioral model {prefix}_* does not fit this code and env {cfg.env} (was it trained "
                        f"for another env, or saved by the reference code, whose layer names differ?); "
                        f"train one with: {command(cfg, '--train_behavioral')}") from None
    buffer = family.make_buffer(info, cfg, device, rng, min(cfg.buffer_size, cfg.max_timesteps))
    save_config(cfg, f"buffer_{cfg.buffer_name}")
    episode = {"low_noise": False}
    start = time.time()

    def new_episode():
        episode["low_noise"] = cfg.low_noise_p is not None and rng.random() < cfg.low_noise_p

    with progress(cfg.max_timesteps, f"buffer {cfg.env}") as bar:
        returns = interact(info, cfg, buffer, cfg.max_timesteps,
                           lambda state, t: agent.buffer_action(state, rng, episode["low_noise"]),
                           lambda t: None, new_episode, bar)
    log = RunLog(cfg, "buffer_performance")
    performance = run_evaluation(agent, cfg, log, cfg.max_timesteps)
    log.close()
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
def train_offline(cfg, family, algo: str = "BCQ") -> dict[str, Any]:
    """Train BCQ or SQV on the saved buffer for ``max_timesteps`` iterations; save ``results/{algo}_{setting}.npy``."""
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    buffer = family.make_buffer(info, cfg, device, rng, 1)
    buffer.load(buffer_prefix(cfg), how_to_create=command(cfg, "--generate_buffer"))
    agent = family.offline_agent(algo, info, cfg, device, buffer)
    save_config(cfg, algo, {"augmentation": repr(getattr(agent, "augment", None))})
    log = RunLog(cfg, algo)
    evaluations: list[float] = []
    start = time.time()
    try:
        with progress(cfg.max_timesteps, f"{algo} {cfg.env}") as bar:
            while agent.iterations < cfg.max_timesteps:
                for _ in range(min(cfg.eval_freq, cfg.max_timesteps - agent.iterations)):
                    train_step(agent, buffer, log)
                    bar.update()
                evaluations.append(run_evaluation(agent, cfg, log, agent.iterations))
                atomic_save_npy(results_path(cfg, algo), evaluations)
                log_eval(bar, algo, agent.iterations, evaluations[-1], agent)
        agent.save(model_prefix(cfg, algo))
    finally:
        log.close()  # flush TensorBoard events even when interrupted
    info.env.close()
    return {"stage": algo, "final_return": evaluations[-1], "evaluations": evaluations,
            "updates": agent.iterations, "seconds": time.time() - start}
