"""Environment creation (docs/DESIGN.md §2, §5).

`make_env(env_id, cfg)` (``cfg``: a run's config, read through `EnvOptions`) returns the environment plus what the rest of the code needs to know about
it: its kind (``atari`` / ``image`` / ``vector``), the state shape the networks see and the action
space. Atari envs get the reference preprocessing (frame skip, max-pool over the last two raw
frames, grayscale 84×84, a 4-frame stack with index 0 newest and zeros at reset); MinAtar grids
become channels-first uint8 images; everything else is passed through.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

import ale_py
import cv2
import gymnasium as gym
import numpy as np

from common.errors import UserError

gym.register_envs(ale_py)
if "DiscreteStochasticDecisionProcess-v0" not in gym.registry:
    gym.register("DiscreteStochasticDecisionProcess-v0", "common.envs.sdp:DiscreteStochasticDecisionProcess",
                 max_episode_steps=100)
if "ItemRecommendation-v0" not in gym.registry:
    gym.register("ItemRecommendation-v0", "common.envs.recsys:ItemRecommendation")
if "InteractionLog-v0" not in gym.registry:  # the held-out users of --dataset interactions:FILE
    gym.register("InteractionLog-v0", "common.data.interactions:InteractionLog")
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no version banner on every env creation
gym.logger.min_level = gym.logger.ERROR  # old ids get our own message instead of a deprecation warning

ATARI, IMAGE, VECTOR = "atari", "image", "vector"
ATARI_EPISODE_STEPS = 27_000  # the reference truncation of an Atari episode, in agent steps


@dataclass(frozen=True)
class EnvOptions:
    """What env creation reads of a run's config: the Atari preprocessing (the reference values, which the
    Atari column of `common.training.config.PARAMETERS` takes from here), a time limit (None: the env's own;
    Atari `ATARI_EPISODE_STEPS`) and the prepared log InteractionLog-v0 evaluates on."""
    frame_skip: int = 4
    frame_size: int = 84
    state_history: int = 4
    done_on_life_loss: bool = False
    max_episode_timesteps: int | None = None
    interaction_cache: str | None = None

    @classmethod
    def of(cls, cfg: Any) -> "EnvOptions":
        """The options of ``cfg`` (a `Config`, any object with these attributes, or None); a missing or
        None attribute keeps the default above."""
        given = {f.name: getattr(cfg, f.name, None) for f in fields(cls)} if cfg is not None else {}
        return cls(**{name: value for name, value in given.items() if value is not None})

    def atari_episode_steps(self) -> int:
        return int(self.max_episode_timesteps or ATARI_EPISODE_STEPS)


def _newer_version(env_id: str) -> str | None:
    """``Hopper-v5`` for ``Hopper-v3`` when only the newer id can run here."""
    match = re.fullmatch(r"(.+)-v(\d+)", env_id)
    if match is None:
        return None
    newer = [f"{match[1]}-v{v}" for v in range(int(match[2]) + 1, 10) if f"{match[1]}-v{v}" in gym.registry]
    return newer[-1] if newer else None


def _register(env_id: str) -> None:
    """Register MinAtar's ids on first use: importing minatar costs about a second (it imports seaborn),
    which every run of another env would pay."""
    if env_id.startswith("MinAtar/") and env_id not in gym.registry:
        import minatar.gym

        minatar.gym.register_envs()


def env_kind(env_id: str) -> str:
    """The kind of a registered env id without creating it (atari, image or vector)."""
    _register(env_id)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as err:
        newer = _newer_version(env_id)
        hint = (f"use {newer}" if newer else "see `python -c \"import gymnasium as gym; gym.pprint_registry()\"` "
                "for the ids this install knows")
        raise UserError(f"unknown env id {env_id!r} ({str(err).splitlines()[0]}); {hint}") from None
    entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
    if entry.startswith("ale_py"):
        return ATARI
    if entry.startswith("minatar"):
        return IMAGE
    return VECTOR


def _make(env_id: str, **kwargs):
    """``gym.make`` with one-line errors (old MuJoCo ids, missing physics engine)."""
    _register(env_id)
    try:
        return gym.make(env_id, **kwargs)
    except (gym.error.Error, ImportError) as err:
        newer = _newer_version(env_id)
        hint = f"; use {newer} (the reference code's mujoco-py ids do not run with gymnasium)" if newer else ""
        raise UserError(f"cannot create env {env_id!r}: {str(err).splitlines()[0]}{hint}") from None


def action_space_of(env_id: str) -> gym.spaces.Space:
    """The action space of an env id (creates the env once)."""
    env_kind(env_id)
    env = _make(env_id)
    space = env.action_space
    env.close()
    return space


class AtariPreprocessing:
    """The reference Atari preprocessing as a small env (Machado et al. 2018 settings, docs/DESIGN.md §5).

    One step repeats the action ``frame_skip`` times and sums the raw rewards; the frame is the
    pixel-wise max of the grayscale screens of the last two raw frames, resized to
    ``frame_size``² with area interpolation. The state is the last ``state_history`` frames,
    index 0 newest, zeros before the episode's first frame. Rewards are returned raw: clipping is
    the learner's business. Reaching ``max_episode_timesteps`` truncates (it is not a terminal).
    """

    def __init__(self, env_id: str, frame_skip: int = 4, frame_size: int = 84, state_history: int = 4,
                 done_on_life_loss: bool = False, max_episode_timesteps: int = 27_000):
        # ALE v5 ids skip frames themselves; frameskip=1 keeps the skip ours alone.
        self.env = gym.make(env_id, obs_type="grayscale", frameskip=1).unwrapped
        self.ale = self.env.ale
        self.action_space = self.env.action_space
        self.frame_skip = int(frame_skip)
        self.frame_size = int(frame_size)
        self.done_on_life_loss = bool(done_on_life_loss)
        self.max_episode_timesteps = int(max_episode_timesteps)
        self.state = np.zeros((int(state_history), self.frame_size, self.frame_size), dtype=np.uint8)
        self.observation_space = gym.spaces.Box(0, 255, self.state.shape, np.uint8)
        self.spec = self.env.spec
        self.lives = 0
        self.episode_length = 0

    def reset(self, *, seed: int | None = None, options: Any = None):
        screen, info = self.env.reset(seed=seed)
        self.lives = self.ale.lives()
        self.episode_length = 0
        self.state[:] = 0
        self.state[0] = self._resize(screen)
        return self.state.copy(), info

    def step(self, action: int):
        total_reward, terminated, truncated = 0.0, False, False
        previous = screen = None
        info: dict = {}
        for _ in range(self.frame_skip):
            previous = screen
            screen, reward, terminated, truncated, info = self.env.step(action)
            total_reward += reward
            if self.done_on_life_loss:
                lives = self.ale.lives()
                terminated = terminated or lives < self.lives
                self.lives = lives
            if terminated or truncated:
                break
        frame = screen if previous is None else np.maximum(previous, screen)
        self.state[1:] = self.state[:-1]
        self.state[0] = self._resize(frame)
        self.episode_length += 1
        truncated = truncated or (not terminated and self.episode_length >= self.max_episode_timesteps)
        return self.state.copy(), total_reward, terminated, truncated, info

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        return cv2.resize(frame, (self.frame_size, self.frame_size), interpolation=cv2.INTER_AREA)

    def close(self):
        self.env.close()


class ChannelsFirst(gym.ObservationWrapper):
    """MinAtar's (10, 10, C) boolean grid as a (C, 10, 10) uint8 image."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        h, w, c = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 1, (c, h, w), np.uint8)

    def observation(self, observation):
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0), dtype=np.uint8)


@dataclass
class EnvInfo:
    """What the learners need to know about an environment."""
    env: Any
    kind: str
    state_shape: tuple
    action_space: gym.spaces.Space


def make_env(env_id: str, cfg: Any = None) -> EnvInfo:
    """Create ``env_id`` with this project's preprocessing.

    ``cfg`` supplies the Atari preprocessing settings (``frame_skip``, ``frame_size``,
    ``state_history``, ``done_on_life_loss``, ``max_episode_timesteps``) and, for other envs, an
    optional ``max_episode_timesteps`` that replaces the registered time limit.
    """
    kind = env_kind(env_id)
    options = EnvOptions.of(cfg)
    if kind == ATARI:
        env = AtariPreprocessing(env_id, options.frame_skip, options.frame_size, options.state_history,
                                 options.done_on_life_loss, options.atari_episode_steps())
    else:
        limit = options.max_episode_timesteps
        kwargs = {} if limit is None else {"max_episode_steps": int(limit)}
        if env_id == "InteractionLog-v0" and options.interaction_cache:
            kwargs["cache"] = options.interaction_cache
        env = _make(env_id, **kwargs)
        if kind == IMAGE:
            env = ChannelsFirst(env)
        elif len(env.observation_space.shape) != 1:
            raise UserError(f"env {env_id!r} has observations of shape {env.observation_space.shape}; "
                            "only Atari, MinAtar and flat vector observations are supported")
    return EnvInfo(env, kind, tuple(env.observation_space.shape), env.action_space)


def random_policy_returns(env_id: str, cfg: Any = None, episodes: int = 100, first_seed: int = 1000) -> np.ndarray:
    """The return of each of ``episodes`` episodes of uniformly random actions (env seeds ``first_seed``,
    ``first_seed + 1``, ...; the action space seeded with the episode's index)."""
    env = make_env(env_id, cfg).env
    returns = np.zeros(episodes)
    for episode in range(episodes):
        env.reset(seed=first_seed + episode)
        env.action_space.seed(episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            returns[episode] += float(reward)
            done = terminated or truncated
    env.close()
    return returns
