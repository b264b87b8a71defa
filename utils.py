"""What every stage shares, under the names the reference code uses (``utils.make_env`` ...).

The definitions live in the `common` package, one module per concern:
`common.envs.make` (env creation, Atari preprocessing), `common.data.buffers` (replay buffers),
`common.learning.augment` (random shift, Gaussian noise), `common.training.runtime` (device, seeding, evaluation),
`common.io` (atomic writes) and `common.errors`.
"""
from common.learning.augment import GaussianNoise, RandomShift, shift
from common.data.buffers import Batch, FrameStackBuffer, ReplayBuffer, stack_mask
from common.envs.make import ATARI, IMAGE, VECTOR, AtariPreprocessing, EnvInfo, env_kind, make_env
from common.errors import UserError
from common.io import atomic_save_json, atomic_save_npy, atomic_torch_save
from common.training.runtime import (evaluate, get_device, mix_actions, random_actions, set_seed,
                            setting_name)

AtariBuffer = FrameStackBuffer  # the reference code's name
StandardBuffer = ReplayBuffer   # the reference code's name

__all__ = [
    "ATARI", "IMAGE", "VECTOR", "AtariBuffer", "AtariPreprocessing", "Batch", "EnvInfo", "FrameStackBuffer",
    "GaussianNoise", "RandomShift", "ReplayBuffer", "StandardBuffer", "UserError", "atomic_save_json",
    "atomic_save_npy", "atomic_torch_save", "env_kind", "evaluate", "get_device", "make_env",
    "mix_actions", "random_actions",
    "set_seed", "setting_name", "shift", "stack_mask",
]
