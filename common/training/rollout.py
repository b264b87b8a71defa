"""Stepping vectorized envs and writing what they do to a buffer, each episode contiguous."""
from __future__ import annotations

from typing import Callable

import numpy as np

from common.envs.vector import VecEnv
from common.training.progress import note


def learning_reward(cfg, reward: float) -> float:
    """The reward a learner stores: clipped to [−1, 1] with ``--reward_clipping``."""
    return float(np.clip(reward, -1.0, 1.0)) if cfg.reward_clipping else float(reward)


class EpisodeWriter:
    """Adds the transitions of ``n`` envs stepped together to one buffer, each episode contiguous.

    With one env, transitions go straight into the buffer (online training samples them at once).
    With several, each env's transitions wait until its episode ends (or `flush` is called), then
    the whole episode is written in order, so a frame-stacked buffer rebuilds exactly the stacks
    each env saw. A waiting transition holds only what the buffer stores (`buffer.staged`): for
    Atari one 84×84 frame, so 64 envs with 1000-step episodes hold about 450 MB.
    """

    def __init__(self, buffer, n: int):
        self.buffer, self.pending = buffer, [[] for _ in range(n)]

    def add(self, env: int, *transition) -> None:
        if len(self.pending) == 1:
            self.buffer.add(*transition)
        else:
            self.pending[env].append(self.buffer.staged(*transition))

    def end_episode(self, env: int) -> None:
        for transition in self.pending[env]:
            self.buffer.add(*transition)
        self.pending[env] = []

    def flush(self) -> None:
        for env in range(len(self.pending)):
            self.end_episode(env)


Policy = Callable[[np.ndarray, int], np.ndarray]


class Rollout:
    """What `interact` needs: the config (seed, reward clipping), the buffer, the progress bar, the
    actions (``policy(states, t)``, or a subclass's `actions`) and two hooks a subclass may fill:
    `after_step` and `episode_start`. ``returns`` collects the raw returns of finished episodes."""

    def __init__(self, cfg, buffer, bar, policy: Policy | None = None):
        self.cfg, self.buffer, self.bar, self.policy = cfg, buffer, bar, policy
        self.returns: list[float] = []

    def actions(self, states: np.ndarray, t: int) -> np.ndarray:
        """One action per env; ``t`` counts the transitions so far."""
        return self.policy(states, t)

    def after_step(self, t: int) -> None:
        """Runs after transition ``t`` was added."""

    def episode_start(self, env: int) -> None:
        """Runs when env ``env`` starts an episode."""


def interact(vec: VecEnv, rollout: Rollout, steps: int, start: int = 0) -> list[float]:
    """Run the envs of ``vec`` up to transition ``steps``, adding every transition to the buffer.

    Returns ``rollout.returns``, the raw returns of the finished episodes. not_done is 0 only on
    true terminals (``terminated``), never on ``truncated``. A truncated step is stored too:
    whole-transition buffers keep its real s', and the frame-stacked buffer never samples it,
    because its s' frame is not stored (docs/DESIGN.md §5). Env i is seeded ``seed + start + i`` at its
    first reset; a run resumed at step ``start`` begins with fresh episodes (an env's internal
    state is not checkpointed).
    """
    n, cfg, bar = vec.num_envs, rollout.cfg, rollout.bar
    writer = EpisodeWriter(rollout.buffer, n)
    states = vec.reset(seeds=[cfg.seed + start + i for i in range(n)])
    for i in range(n):
        rollout.episode_start(i)
    first, episode_return, t = np.ones(n, bool), np.zeros(n), start
    while t < steps:
        actions = rollout.actions(states, t)
        next_states, reward, terminated, truncated = vec.step(actions)
        done = terminated | truncated
        for i in range(min(n, steps - t)):
            episode_return[i] += float(reward[i])
            writer.add(i, states[i], actions[i], next_states[i], learning_reward(cfg, reward[i]),
                       0.0 if terminated[i] else 1.0, first[i])
            rollout.after_step(t)
            t += 1
            bar.update()
            if done[i]:
                writer.end_episode(i)
                rollout.returns.append(float(episode_return[i]))
                note(bar, episodes=len(rollout.returns), last_return=f"{episode_return[i]:.1f}")
        first, states = done, next_states
        episode_return[done] = 0.0
        if done.any():
            states = vec.reset(done)
            for i in np.flatnonzero(done):
                rollout.episode_start(i)
    writer.flush()  # the unfinished episodes: their last step has no stored s' and is never sampled
    return rollout.returns
