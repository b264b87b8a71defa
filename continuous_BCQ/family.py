"""The continuous family as `common.training.stages` uses it: DDPG behavioral agent, BCQ/SQV offline agents."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from utils import BY_PREFIX, VECTOR, EnvInfo, ReplayBuffer, UserError, make_augmentation, read_npy_flag
from continuous_BCQ.bcq import BCQ
from continuous_BCQ.ddpg import DDPG
from continuous_BCQ.fqe import FQE
from continuous_BCQ.sqv import SQV

BEHAVIORAL = "DDPG"
LEARNERS = {"BCQ": BCQ, "SQV": SQV}  # `Algorithm.learner` → class (SQIL is discrete only)


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


def item_embeddings(info: EnvInfo, cfg) -> np.ndarray | None:
    """``--item_embeddings``: None, the env's own (``env``) or an (items, action dim) .npy file."""
    source = cfg.item_embeddings
    if source is None:
        return None
    if source == "env":
        items = getattr(info.env.unwrapped, "item_embeddings", None)
        if items is None:
            raise UserError(f"env {cfg.env} exposes no item embeddings; pass --item_embeddings FILE.npy")
    else:
        items = read_npy_flag("--item_embeddings", source, "an (items, dim) .npy or 'env'")
    action_dim = info.action_space.shape[0]
    if items.ndim != 2 or items.shape[1] != action_dim or not np.issubdtype(items.dtype, np.floating):
        raise UserError(f"--item_embeddings {source}: expected a float array of shape (items, {action_dim}) "
                        f"(the action size of {cfg.env}), got {items.dtype} {items.shape}")
    k = getattr(info.env.unwrapped, "k", None)  # a recommender's list length
    least = max(1, int(k or 1))
    if len(items) < least:
        why = f" ({cfg.env} recommends {k} at a time)" if k else ""
        raise UserError(f"--item_embeddings {source} holds {len(items)} items; give at least {least}{why}")
    with np.errstate(over="ignore", invalid="ignore"):  # as training uses them: float32, then normalized
        norms = np.linalg.norm(items.astype(np.float32), axis=1)
    if not np.isfinite(items).all() or not (np.isfinite(norms) & (norms > 0)).all():
        raise UserError(f"--item_embeddings {source}: every embedding must be finite and non-zero, with a norm "
                        f"finite and non-zero in float32 (rescale them, e.g. to unit length)")
    return items


def offline_agent(algo: str, info: EnvInfo, cfg, device, buffer):
    """The learner of the offline algorithm whose results prefix is ``algo`` (`common.learning.algorithms`)."""
    algorithm = BY_PREFIX[algo]
    if algorithm.learner not in LEARNERS:
        raise UserError(f"{algorithm.label} needs discrete actions; {cfg.env} has a Box action space")
    two_views = {} if not algorithm.two_views else {"augment": make_augmentation(info.kind, cfg, buffer, device),
                                                     "views": algorithm.views, "targets": algorithm.targets}
    return LEARNERS[algorithm.learner](*dims(info), cfg, device, items=item_embeddings(info, cfg), **two_views)


def fqe_agent(info: EnvInfo, cfg, device, policy) -> FQE:
    """Fitted Q Evaluation of ``policy`` (a batch of states → actions)."""
    return FQE(*dims(info)[:2], cfg, device, policy)
