"""The shared layer's public front: what the learners of both families and the scripts use, under the
names the reference code uses (``utils.make_env``, ``utils.ReplayBuffer``, ``utils.AtariBuffer`` ...).

Both families (`discrete_SQV`, `continuous_BCQ`) import the shared layer through this file only; the
definitions live in `common/`, one folder per concern (README, "Layout"): `common.envs` (env creation,
Atari preprocessing), `common.data` (replay buffers), `common.learning` (the agent base class, networks,
augmentation, the two views, the list of algorithms) and `common.training` (device, seeding, evaluation).
"""
from common.data.buffers import Batch, FrameStackBuffer, ReplayBuffer, stack_mask
from common.envs.make import ATARI, IMAGE, VECTOR, AtariPreprocessing, EnvInfo, env_kind, make_env
from common.envs.recsys import top_k, unit
from common.errors import UserError
from common.io import atomic_save_json, atomic_save_npy, atomic_torch_save, read_npy_flag
from common.learning.agent import Agent
from common.learning.algorithms import BY_NAME, BY_PREFIX
from common.learning.augment import GaussianNoise, RandomShift, make_augmentation, shift
from common.learning.nets import adam, frozen_copy, mlp, soft_update
from common.learning.swap import two_views
from common.training.runtime import (buffer_device, evaluate, get_device, mix_actions, random_actions, set_seed,
                                     setting_name)

AtariBuffer = FrameStackBuffer  # the reference code's name
StandardBuffer = ReplayBuffer   # the reference code's name

__all__ = [
    "ATARI", "BY_NAME", "BY_PREFIX", "IMAGE", "VECTOR", "Agent", "AtariBuffer", "AtariPreprocessing", "Batch",
    "EnvInfo", "FrameStackBuffer", "GaussianNoise", "RandomShift", "ReplayBuffer", "StandardBuffer", "UserError",
    "adam", "atomic_save_json", "atomic_save_npy", "atomic_torch_save", "buffer_device", "env_kind", "evaluate",
    "frozen_copy", "get_device", "make_augmentation", "make_env", "mix_actions", "mlp", "random_actions",
    "read_npy_flag", "set_seed", "setting_name", "shift", "soft_update", "stack_mask", "top_k", "two_views", "unit",
]
