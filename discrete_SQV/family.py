"""The discrete family as `common.training.stages` uses it: DQN behavioral agent, BCQ/SQV offline agents."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from utils import (ATARI, BY_NAME, BY_PREFIX, VECTOR, EnvInfo, FrameStackBuffer, ReplayBuffer, UserError, buffer_device,
                   make_augmentation)
from discrete_SQV.bcq import BCQ
from discrete_SQV.dqn import DQN
from discrete_SQV.fqe import FQE
from discrete_SQV.sqil import SQIL, DemoMix
from discrete_SQV.sqv import SQV

BEHAVIORAL = "DQN"
LEARNERS = {"BCQ": BCQ, "SQV": SQV, "SQIL": SQIL}  # `Algorithm.learner` → class
__all__ = ["BEHAVIORAL", "LEARNERS", "DemoMix", "behavioral_agent", "check_env", "fqe_agent", "make_buffer", "offline_agent", "sqil_agent"]


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
    """The learner of the offline algorithm whose results prefix is ``algo`` (`common.learning.algorithms`)."""
    algorithm = BY_PREFIX[algo]
    two_views = {} if not algorithm.two_views else {"augment": make_augmentation(info.kind, cfg, buffer, device),
                                                     "views": algorithm.views, "targets": algorithm.targets}
    return LEARNERS[algorithm.learner](info.kind, info.state_shape, info.action_space.n, cfg, device, **two_views)


def sqil_agent(info: EnvInfo, cfg, device) -> SQIL:
    return LEARNERS[BY_NAME["sqil"].learner](info.kind, info.state_shape, info.action_space.n, cfg, device)


def fqe_agent(info: EnvInfo, cfg, device, policy) -> FQE:
    """Fitted Q Evaluation of ``policy`` (a batch of states → actions)."""
    return FQE(info.kind, info.state_shape, info.action_space.n, cfg, device, policy)
