"""The discrete family as `common.training.stages` uses it: DQN behavioral agent, BCQ/SQV offline agents."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from common.learning.algorithms import BY_PREFIX
from common.learning.augment import make_augmentation
from common.data.buffers import FrameStackBuffer, ReplayBuffer
from common.envs.make import ATARI, VECTOR, EnvInfo
from common.training.runtime import buffer_device
from common.errors import UserError
from discrete_SQV.bcq import BCQ
from discrete_SQV.dqn import DQN
from discrete_SQV.fqe import FQE
from discrete_SQV.sqil import SQIL, DemoMix
from discrete_SQV.sqv import SQV

BEHAVIORAL = "DQN"
__all__ = ["BEHAVIORAL", "DemoMix", "behavioral_agent", "check_env", "fqe_agent", "make_buffer", "offline_agent", "sqil_agent"]


def check_env(info: EnvInfo, cfg) -> None:
    if not isinstance(info.action_space, gym.spaces.Discrete):
        raise UserError(f"env {cfg.env} has action space {info.action_space}; the discrete family needs Discrete")


def make_buffer(info: EnvInfo, cfg, device, rng, capacity: int):
    if info.kind == ATARI:
        frame_bytes = int(np.prod(info.state_shape[1:]))
        return FrameStackBuffer(info.state_shape, capacity, cfg.batch_size, device, rng,
                                storage_device=buffer_device(cfg.buffer_device, device, capacity * frame_bytes))
    dtype = np.float32 if info.kind == VECTOR else np.uint8
    return ReplayBuffer(info.state_shape, capacity, cfg.batch_size, device, rng, state_dtype=dtype)


def behavioral_agent(info: EnvInfo, cfg, device) -> DQN:
    return DQN(info.kind, info.state_shape, info.action_space.n, cfg, device)


def offline_agent(algo: str, info: EnvInfo, cfg, device, buffer):
    algorithm = BY_PREFIX[algo]
    if algorithm.two_views:
        return SQV(info.kind, info.state_shape, info.action_space.n, cfg, device,
                   augment=make_augmentation(info.kind, cfg, buffer, device),
                   views=algorithm.views, targets=algorithm.targets)
    return BCQ(info.kind, info.state_shape, info.action_space.n, cfg, device)


def sqil_agent(info: EnvInfo, cfg, device) -> SQIL:
    return SQIL(info.kind, info.state_shape, info.action_space.n, cfg, device)


def fqe_agent(info: EnvInfo, cfg, device, policy) -> FQE:
    """Fitted Q Evaluation of ``policy`` (a batch of states → actions)."""
    return FQE(info.kind, info.state_shape, info.action_space.n, cfg, device, policy)
