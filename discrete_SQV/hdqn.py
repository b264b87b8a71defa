"""h-DQN (Kulkarni, Narasimhan, Saeedi & Tenenbaum 2016): a meta-controller picks goals, a
controller reaches them. Both are this project's DQN (networks, targets, Adam, batched replay).

- Meta-controller: Q(s, g) over the goals g ∈ {s1, …, s6}; a transition per goal attempt,
  (s at goal start, g, s at goal end, F, m) with F the extrinsic reward collected during the attempt
  and m = 0 only when the episode terminated.
- Controller: Q([onehot(g), s], a); intrinsic reward 1 when s' is the goal, which ends the attempt
  (m = 0, the goal's value does not bootstrap past it); m = 0 too when the episode terminates.
  A time-limit truncation ends the attempt and the episode but is never a terminal.
- Exploration per level: the meta-controller's ε decays linearly from 1 to 0.1 over
  ``META_EPS_STEPS`` env steps, as in the paper; the controller's ε is annealed per goal, from 1
  to 0.1 over that goal's first ``GOAL_EPS_ATTEMPTS`` attempts. (The paper anneals it from the
  goal's success rate; here even a perfect controller reaches s6 from s2 only about 20% of the
  time, because right moves fail half the time, so an ε of 1 − success rate would stay near 0.8.)

Training runs through the stage machinery (`HDQNRun`): checkpoints at the end of the first episode
past each multiple of ``checkpoint_freq`` (the env's generator included, so ``--resume`` continues
bit for bit), the NaN/divergence guard, greedy evaluations and the usual logs.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable

import numpy as np
import torch

from common.data.buffers import ReplayBuffer
from common.envs.make import VECTOR, EnvInfo, make_env
from common.errors import UserError
from common.io import atomic_save_npy
from common.learning.agent import Agent
from common.training.guards import stop_on_signals
from common.training.logs import RunLog
from common.training.paths import episodes_path, model_prefix, results_path, save_config
from common.training.progress import progress
from common.training.run import Run
from common.training.runtime import get_device, set_seed
from discrete_SQV.dqn import DQN

META_EPS_STEPS = 50_000
GOAL_EPS_ATTEMPTS = 2_000
MIN_EPS = 0.1


def with_goal(goal: int, state: np.ndarray, n_goals: int) -> np.ndarray:
    """The controller's input: the goal one-hot, then the observation."""
    one_hot = np.zeros(n_goals, np.float32)
    one_hot[goal] = 1.0
    return np.concatenate([one_hot, np.asarray(state, np.float32)])


class GoalStats:
    """Per goal: how often it was attempted, its success rate over the last ``window`` attempts
    (logged), and the controller ε for it, annealed with its attempts."""

    def __init__(self, n_goals: int, window: int = 100):
        self.attempts = np.zeros(n_goals, dtype=np.int64)
        self.recent = [deque(maxlen=window) for _ in range(n_goals)]

    def record(self, goal: int, reached: bool) -> None:
        self.attempts[goal] += 1
        self.recent[goal].append(reached)

    def success_rate(self, goal: int) -> float:
        return float(np.mean(self.recent[goal])) if self.recent[goal] else 0.0

    def epsilon(self, goal: int) -> float:
        return max(MIN_EPS, 1.0 - (1.0 - MIN_EPS) * self.attempts[goal] / GOAL_EPS_ATTEMPTS)

    def state_dict(self) -> dict[str, Any]:
        return {"attempts": torch.from_numpy(self.attempts.copy()), "recent": [list(r) for r in self.recent]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.attempts = state["attempts"].numpy().astype(np.int64)
        self.recent = [deque(r, maxlen=old.maxlen) for r, old in zip(state["recent"], self.recent)]


class HDQN:
    """The two learners, their buffers and the goal statistics; to the stage machinery an agent whose
    iterations are env steps and whose loss terms are both learners' (``controller_*``, ``meta_*``)."""

    def __init__(self, n_states: int, n_actions: int, cfg, device, rng: np.random.Generator):
        self.n_goals, self.n_actions, self.rng = n_states, n_actions, rng
        self.device = torch.device(device)
        self.meta = DQN(VECTOR, (n_states,), n_states, cfg, device)
        self.controller = DQN(VECTOR, (2 * n_states,), n_actions, cfg, device)
        self.meta_buffer = ReplayBuffer((n_states,), cfg.buffer_size, cfg.batch_size, device, rng)
        self.controller_buffer = ReplayBuffer((2 * n_states,), cfg.buffer_size, cfg.batch_size, device, rng)
        self.goals = GoalStats(n_states)
        self.steps = 0

    @property
    def iterations(self) -> int:
        return self.steps

    @iterations.setter
    def iterations(self, steps: int) -> None:
        self.steps = steps

    @property
    def precision(self) -> str:
        return self.controller.precision

    @precision.setter
    def precision(self, precision: str) -> None:
        self.meta.precision = self.controller.precision = precision

    @property
    def last_loss(self) -> dict[str, torch.Tensor]:
        """The controller's terms, then the meta-controller's (it starts training later)."""
        return {f"{name}_{key}": value for name, learner in (("controller", self.controller), ("meta", self.meta))
                for key, value in learner.last_loss.items()}

    def loss_summary(self) -> str:
        return Agent.loss_summary(self)

    def current_value(self) -> torch.Tensor | None:
        """The learners' mean Q of their latest batches, the larger in magnitude (the guard bounds it)."""
        values = [v for v in (self.controller.current_value(), self.meta.current_value()) if v is not None]
        return max(values, key=lambda v: abs(float(v))) if values else None

    def meta_epsilon(self) -> float:
        return max(MIN_EPS, 1.0 - (1.0 - MIN_EPS) * self.steps / META_EPS_STEPS)

    def choose_goal(self, state: np.ndarray) -> int:
        if self.rng.random() < self.meta_epsilon():
            return int(self.rng.integers(self.n_goals))
        return int(self.meta.act(state))

    def choose_action(self, goal: int, state: np.ndarray) -> int:
        if self.rng.random() < self.goals.epsilon(goal):
            return int(self.rng.integers(self.n_actions))
        return int(self.controller.act(with_goal(goal, state, self.n_goals)))

    def observe_step(self, goal, state, action, next_state, terminated) -> bool:
        """Store the controller's transition; returns whether the goal was reached."""
        reached = int(np.argmax(next_state)) == goal
        self.controller_buffer.add(with_goal(goal, state, self.n_goals), action, with_goal(goal, next_state, self.n_goals),
                                   1.0 if reached else 0.0, 0.0 if (reached or terminated) else 1.0)
        return reached

    def observe_goal(self, start_state, goal, end_state, extrinsic, terminated, reached) -> None:
        self.meta_buffer.add(start_state, goal, end_state, extrinsic, 0.0 if terminated else 1.0)
        self.goals.record(goal, reached)

    def train(self, start_updates: int) -> None:
        for agent, buffer in ((self.controller, self.controller_buffer), (self.meta, self.meta_buffer)):
            if buffer.size >= start_updates:
                agent.train(buffer)


def run_episode(hdqn: HDQN, env, seed: int | None, learn: Callable[[], None] | None = None) -> tuple[float, int]:
    """One episode of goal attempts, ``learn()`` after every step when given; returns its extrinsic
    return and length."""
    state, _ = env.reset(seed=seed)
    total, length, done = 0.0, 0, False
    while not done:
        goal, start_state, extrinsic, reached, terminated = hdqn.choose_goal(state), state, 0.0, False, False
        while not (done or reached):
            action = hdqn.choose_action(goal, state)
            next_state, reward, terminated, truncated, _ = env.step(action)
            reached = hdqn.observe_step(goal, state, action, next_state, terminated)
            extrinsic += float(reward)
            state, done = next_state, terminated or truncated
            length += 1
            hdqn.steps += 1
            if learn is not None:
                learn()
        hdqn.observe_goal(start_state, goal, state, extrinsic, terminated, reached)
        total += extrinsic
    return total, length


def greedy_return(hdqn: HDQN, env, seed: int, rng: np.random.Generator, eps: float) -> float:
    """The extrinsic return of one episode with greedy goals and actions (an action uniformly random
    with probability ``eps``, drawn from ``rng``); stores nothing and draws from no training stream."""
    state, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        goal, reached = int(hdqn.meta.act(state)), False
        while not (done or reached):
            random = eps > 0 and rng.random() < eps
            action = int(rng.integers(hdqn.n_actions)) if random else int(
                hdqn.controller.act(with_goal(goal, state, hdqn.n_goals)))
            state, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
            reached = int(np.argmax(state)) == goal
    return total


class HDQNRun(Run):
    """h-DQN's run: both learners' buffers and the env's generator in every checkpoint (checkpoints
    fall at episode ends), and evaluations of the greedy hierarchy."""

    def __init__(self, cfg, hdqn: HDQN, env):
        buffers = {"meta_buffer": hdqn.meta_buffer, "controller_buffer": hdqn.controller_buffer}
        super().__init__(cfg, "hDQN", hdqn, hdqn.rng, RunLog(cfg, "hDQN"), hdqn.controller_buffer, buffers)
        self.env = env

    def state(self) -> dict[str, Any]:
        return {**super().state(), "env_rng": self.env.unwrapped.np_random.bit_generator.state}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.env.unwrapped.np_random.bit_generator.state = state["env_rng"]

    def learn(self) -> None:
        """After each env step: the updates due, their loss terms watched for NaN/inf."""
        self.agent.train(self.cfg.batch_size)
        self.guard.update(self.agent.steps, self.agent.last_loss)

    def returns(self) -> np.ndarray:
        """Episode k from ``reset(seed + 100 + k)``, its ε-draws from its own generator, as `runtime.evaluate` plays them."""
        cfg, env = self.cfg, make_env(self.cfg.env, self.cfg).env
        returns = [greedy_return(self.agent, env, cfg.seed + 100 + k, np.random.default_rng([cfg.seed + 100, k]),
                                 cfg.eval_eps or 0.0) for k in range(cfg.eval_episodes)]
        env.close()
        return np.array(returns)

    def report(self, bar) -> None:
        """The episode returns so far, an evaluation, and a training row of goal statistics."""
        hdqn, returns = self.agent, self.episode_returns
        atomic_save_npy(episodes_path(self.cfg, "hDQN"), returns)
        self.evaluate(hdqn.steps, bar, results_path(self.cfg, "hDQN"))
        recent = float(np.mean(returns[-1000:]))
        self.log.training(hdqn.steps, {"episodes": len(returns), "mean_extrinsic_last_1000": recent,
                                       "meta_epsilon": hdqn.meta_epsilon(),
                                       "success_s6": hdqn.goals.success_rate(hdqn.n_goals - 1),
                                       **{f"controller_{k}": v for k, v in hdqn.controller.scalars().items()}})
        bar.write(f"[hDQN] step {hdqn.steps}: {len(returns)} episodes, mean extrinsic reward of the last "
                  f"{min(1000, len(returns))}: {recent:.3f}")


def goal_env(cfg) -> EnvInfo:
    """The env, checked: its one-hot observation's states are the goals, and its actions are discrete."""
    info = make_env(cfg.env, cfg)
    space = info.env.observation_space
    one_hot = info.kind == VECTOR and len(info.state_shape) == 1 and np.all(space.low == 0) and np.all(space.high == 1)
    if not (hasattr(info.action_space, "n") and one_hot):
        raise UserError(f"--hdqn takes the states of a one-hot observation as its goals and needs discrete actions "
                        f"(e.g. DiscreteStochasticDecisionProcess-v0); {cfg.env} does not fit")
    return info


def train_hdqn(cfg) -> dict:
    """Train h-DQN for ``max_timesteps`` env steps; save ``results/hDQN_{setting}_episodes.npy`` (the
    extrinsic return of every training episode), its evaluations and logs, and the two networks."""
    info = goal_env(cfg)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    hdqn = HDQN(info.state_shape[0], info.action_space.n, cfg, device, rng)
    run = HDQNRun(cfg, hdqn, info.env)
    first_step = run.resume()
    save_config(cfg, "hDQN")
    start = time.time()
    try:
        with stop_on_signals() as run.stop, progress(cfg.max_timesteps, f"hDQN {cfg.env}") as bar:
            bar.update(first_step)
            while hdqn.steps < cfg.max_timesteps:
                total, length = run_episode(hdqn, info.env, None if run.episode_returns else cfg.seed, run.learn)
                run.episode_returns.append(total)
                bar.update(length)
                if hdqn.steps >= cfg.eval_freq * (len(run.evaluations) + 1) or hdqn.steps >= cfg.max_timesteps:
                    run.report(bar)
                run.after(hdqn.steps)
        atomic_save_npy(episodes_path(cfg, "hDQN"), run.episode_returns)
        run.check()
        prefix = model_prefix(cfg, "hDQN")
        hdqn.meta.save(f"{prefix}_meta")
        hdqn.controller.save(f"{prefix}_controller")
        run.finish()
    finally:
        run.log.close()
    info.env.close()
    returns = run.episode_returns
    return {"stage": "hDQN", "final_return": run.evaluations[-1], "evaluations": run.evaluations,
            "episodes": len(returns), "mean_last_1000": float(np.mean(returns[-1000:])), "seconds": time.time() - start}
