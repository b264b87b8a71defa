"""The continuous family as `common.stages` uses it: DDPG behavioral agent, BCQ/SQV offline agents."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from common.augment import make_augmentation
from common.buffers import ReplayBuffer
from common.envs import VECTOR, EnvInfo
from common.errors import UserError
from continuous_BCQ.bcq import BCQ
from continuous_BCQ.ddpg import DDPG
from continuous_BCQ.sqv import SQV

BEHAVIORAL = "DDPG"


def check_env(info: EnvInfo, cfg) -> None:
    space = info.action_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise UserError(f"env {cfg.env} has action space {space}; the continuous family needs a 1-D Box")
    if not (np.all(np.isfinite(space.high)) and np.allclose(space.low, -space.high)):
        raise UserError(f"env {cfg.env} has action bounds low={space.low} high={space.high}; continuous BCQ "
                        "scales actions by symmetric bounds [-max, max] (rescale the env's actions first, e.g. "
                        "with gymnasium.wrappers.RescaleAction)")
    if info.kind != VECTOR:
        raise UserError(f"env {cfg.env} has image observations; the continuous family takes state vectors")


def dims(info: EnvInfo) -> tuple[int, int, np.ndarray]:
    return info.state_shape[0], info.action_space.shape[0], info.action_space.high.astype(np.float32)


def make_buffer(info: EnvInfo, cfg, device, rng, capacity: int) -> ReplayBuffer:
    return ReplayBuffer(info.state_shape, capacity, cfg.batch_size, device, rng,
                        action_shape=info.action_space.shape, action_dtype=np.float32)


def behavioral_agent(info: EnvInfo, cfg, device) -> DDPG:
    return DDPG(*dims(info), cfg, device)


def offline_agent(algo: str, info: EnvInfo, cfg, device, buffer):
    if algo == "SQV":
        return SQV(*dims(info), cfg, device, augment=make_augmentation(info.kind, cfg, buffer, device))
    return BCQ(*dims(info), cfg, device)
