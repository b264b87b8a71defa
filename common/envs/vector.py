"""N environments stepped together, so the policy acts on all of them with one batched network call.

`make_vec_env(env_id, cfg, n)` returns a `VecEnv` with manual resets: ``step`` returns each env's
true next state (the last state of an episode too), and the caller resets the finished envs with
``reset(mask, seeds)`` before stepping again. Atari uses ale-py's C++ vector env, which reproduces
docs/DESIGN.md §5's preprocessing (checked against `common.envs.make.AtariPreprocessing` by a test); the stack is
flipped to index 0 = newest. Every other env uses gymnasium's `SyncVectorEnv` of `make_env` envs.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from common.envs.make import ATARI, EnvOptions, env_kind, make_env


class VecEnv:
    """``reset(mask, seeds) -> states``; ``step(actions) -> (states, rewards, terminated, truncated)``."""

    num_envs: int
    action_space: gym.spaces.Space

    def reset(self, mask: np.ndarray | None = None, seeds: list[int | None] | None = None) -> np.ndarray:
        raise NotImplementedError

    def step(self, actions: np.ndarray):
        raise NotImplementedError

    def close(self) -> None:
        pass


class GymVecEnv(VecEnv):
    """gymnasium's SyncVectorEnv with autoreset disabled."""

    def __init__(self, env_id: str, cfg, n: int):
        from gymnasium.vector import AutoresetMode, SyncVectorEnv

        self.envs = SyncVectorEnv([lambda: make_env(env_id, cfg).env for _ in range(n)],
                                  autoreset_mode=AutoresetMode.DISABLED)
        self.num_envs = n
        self.action_space = self.envs.single_action_space
        self.states: np.ndarray | None = None

    def reset(self, mask=None, seeds=None):
        mask = np.ones(self.num_envs, bool) if mask is None else mask
        seeds = [None if s is None else int(s) for s in (seeds if seeds is not None else [None] * self.num_envs)]
        states, _ = self.envs.reset(seed=seeds, options={"reset_mask": mask})
        self.states = states if self.states is None else np.where(_expand(mask, states), states, self.states)
        return self.states.copy()

    def step(self, actions):
        self.states, reward, terminated, truncated, _ = self.envs.step(actions)
        return self.states.copy(), reward, terminated, truncated

    def close(self):
        self.envs.close()


class AtariVecEnv(VecEnv):
    """ale-py's vector env with docs/DESIGN.md §5's settings: no no-op starts, no fire reset, raw rewards,
    the id's sticky-action probability, ``frame_skip``, ``frame_size``², ``state_history`` frames and
    the ``max_episode_timesteps`` truncation. A lost life ends the episode (with a full reset, as
    `AtariPreprocessing` does) when ``done_on_life_loss`` is set."""

    def __init__(self, env_id: str, cfg, n: int):
        from ale_py.vector_env import AtariVectorEnv

        spec = gym.spec(env_id)
        options = EnvOptions.of(cfg)
        self.envs = AtariVectorEnv(
            spec.kwargs["game"], n, num_threads=0, noop_max=0, use_fire_reset=False, reward_clipping=False,
            episodic_life=False, repeat_action_probability=float(spec.kwargs.get("repeat_action_probability", 0.0)),
            frameskip=options.frame_skip, img_height=options.frame_size, img_width=options.frame_size,
            stack_num=options.state_history,
            max_num_frames_per_episode=options.atari_episode_steps() * options.frame_skip)
        self.num_envs = n
        self.action_space = self.envs.single_action_space
        self.done_on_life_loss = options.done_on_life_loss
        self.lives = np.zeros(n, np.int64)

    def reset(self, mask=None, seeds=None):
        mask = np.ones(self.num_envs, bool) if mask is None else mask
        if seeds is None or all(s is None for s in np.asarray(seeds, object)[mask]):
            chosen = None  # each env continues its own random stream
        else:
            chosen = np.array([-1 if s is None else s for s in np.asarray(seeds, object)[mask]], np.int64)
        states, info = self.envs.reset(seed=chosen, options={"reset_mask": mask})
        self.lives = np.where(mask, info["lives"], self.lives)
        return np.ascontiguousarray(states[:, ::-1])

    def step(self, actions):
        states, reward, terminated, truncated, info = self.envs.step(np.asarray(actions))
        if self.done_on_life_loss:
            terminated = terminated | (info["lives"] < self.lives)
        self.lives = info["lives"]
        truncated = truncated & ~terminated
        return np.ascontiguousarray(states[:, ::-1]), reward.astype(np.float64), terminated, truncated

    def close(self):
        self.envs.close()


def _expand(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    return mask.reshape(-1, *([1] * (like.ndim - 1)))


def make_vec_env(env_id: str, cfg, n: int) -> VecEnv:
    return AtariVecEnv(env_id, cfg, n) if env_kind(env_id) == ATARI else GymVecEnv(env_id, cfg, n)
