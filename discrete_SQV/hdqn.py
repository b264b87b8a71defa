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
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np

from common.data.buffers import ReplayBuffer
from common.envs.make import VECTOR, make_env
from common.errors import UserError
from common.io import atomic_save_npy
from common.training.logs import RunLog
from common.training.runtime import get_device, set_seed
from common.training.stages import episodes_path, model_prefix
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


class HDQN:
    def __init__(self, n_states: int, n_actions: int, cfg, device, rng: np.random.Generator):
        self.n_goals, self.n_actions, self.rng = n_states, n_actions, rng
        self.meta = DQN(VECTOR, (n_states,), n_states, cfg, device)
        self.controller = DQN(VECTOR, (2 * n_states,), n_actions, cfg, device)
        self.meta_buffer = ReplayBuffer((n_states,), cfg.buffer_size, cfg.batch_size, device, rng)
        self.controller_buffer = ReplayBuffer((2 * n_states,), cfg.buffer_size, cfg.batch_size, device, rng)
        self.goals = GoalStats(n_states)
        self.steps = 0

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


def run_episode(hdqn: HDQN, env, seed: int | None, learn: bool, start_updates: int) -> tuple[float, int]:
    """One episode of goal attempts; returns its extrinsic return and length."""
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
            if learn:
                hdqn.train(start_updates)
        hdqn.observe_goal(start_state, goal, state, extrinsic, terminated, reached)
        total += extrinsic
    return total, length


def train_hdqn(cfg) -> dict:
    """Train h-DQN for ``max_timesteps`` env steps; save ``results/hDQN_{setting}_episodes.npy``
    (the extrinsic return of every training episode) and the two networks."""
    info = make_env(cfg.env, cfg)
    space = info.env.observation_space
    one_hot = info.kind == VECTOR and len(info.state_shape) == 1 and np.all(space.low == 0) and np.all(space.high == 1)
    if not (hasattr(info.action_space, "n") and one_hot):
        raise UserError(f"--hdqn takes the states of a one-hot observation as its goals and needs discrete actions "
                        f"(e.g. DiscreteStochasticDecisionProcess-v0); {cfg.env} does not fit")
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    hdqn = HDQN(info.state_shape[0], info.action_space.n, cfg, device, rng)
    log = RunLog(cfg, "hDQN")
    returns: list[float] = []
    path = episodes_path(cfg, "hDQN")
    start, next_report = time.time(), cfg.eval_freq
    try:
        while hdqn.steps < cfg.max_timesteps:
            total, _ = run_episode(hdqn, info.env, cfg.seed if not returns else None, True, cfg.batch_size)
            returns.append(total)
            if hdqn.steps >= next_report or hdqn.steps >= cfg.max_timesteps:
                next_report += cfg.eval_freq
                atomic_save_npy(path, returns)
                recent = float(np.mean(returns[-1000:]))
                log.training(hdqn.steps, {"episodes": len(returns), "mean_extrinsic_last_1000": recent,
                                          "meta_epsilon": hdqn.meta_epsilon(),
                                          "success_s6": hdqn.goals.success_rate(hdqn.n_goals - 1),
                                          **{f"controller_{k}": v for k, v in hdqn.controller.scalars().items()}})
                print(f"[hDQN] step {hdqn.steps}: {len(returns)} episodes, mean extrinsic reward of the last "
                      f"{min(1000, len(returns))}: {recent:.3f}", flush=True)
        atomic_save_npy(path, returns)
        prefix = model_prefix(cfg, "hDQN")
        hdqn.meta.save(f"{prefix}_meta")
        hdqn.controller.save(f"{prefix}_controller")
    finally:
        log.close()
    info.env.close()
    return {"stage": "hDQN", "episodes": len(returns), "mean_last_1000": float(np.mean(returns[-1000:])),
            "seconds": time.time() - start}
