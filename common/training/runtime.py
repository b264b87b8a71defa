"""Device choice, seeding, action selection with ε and evaluation: one definition each."""
from __future__ import annotations

import ctypes
import random
import sys
from typing import Any, Callable

import numpy as np
import torch

from common.errors import UserError


def keep_freed_memory(trim_threshold: int = 512 << 20) -> None:
    """Let glibc's malloc keep freed blocks for reuse instead of handing them back to the OS.

    A CPU training step allocates and frees tensors of several MB (a float copy of 128 Atari stacks
    is 14 MB). glibc serves blocks over its mmap threshold with fresh pages and, by default, also
    trims the heap top at each free, so each update can pay thousands of page faults (measured:
    sample + augment + float 5.7 ms per batch with the defaults, 0.9 ms with this). Blocks over
    32 MB (the buffers) are still mapped on their own; at most ``trim_threshold`` bytes of freed
    heap stay with the process. A no-op where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 32 << 20)
    mallopt(M_TRIM_THRESHOLD, trim_threshold)


def get_device(name: str | None = None, flag: str = "--device") -> torch.device:
    """``cuda`` when available unless told otherwise; a clear error for an unavailable device."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"{flag} {name}: not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{flag} {name}: CUDA is not available on this machine; use {flag} cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"{flag} {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"{flag} {name}: only cpu and cuda are supported")
    return device


def buffer_device(name: str | None, device: torch.device, nbytes: int) -> torch.device:
    """Where a buffer's frames live: ``auto`` puts them on the training device when they take under
    80% of its free memory (a GPU run then moves no pixels over PCIe per update), else on the CPU."""
    if name not in (None, "auto"):
        return get_device(name, "--buffer_device")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return device if nbytes < 0.8 * free else torch.device("cpu")
    return torch.device("cpu")


def set_seed(seed: int, env=None) -> np.random.Generator:
    """Seed Python, NumPy and torch, and the env and its action space; return the run's generator.

    The evaluation env is seeded separately with ``seed + 100`` (see `evaluate`).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if env is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return np.random.default_rng(seed)


def setting_name(env_id: str, seed: int) -> str:
    """``{env}_{seed}`` as in the reference file names, with '/' made safe for paths."""
    return f"{env_id.replace('/', '_')}_{seed}"


def random_actions(space, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random actions of a Discrete or Box space, drawn from ``rng``."""
    if hasattr(space, "n"):
        return rng.integers(space.n, size=n)
    return rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype)


def mix_actions(act_batch: Callable[[np.ndarray], np.ndarray], states: np.ndarray, random: np.ndarray, space,
                rng: np.random.Generator) -> np.ndarray:
    """Per state: a uniformly random action where ``random`` is set, else the policy's action.

    The policy runs once on the batch of states that need it (not at all when every action is random).
    """
    actions = random_actions(space, rng, len(states))
    if not random.all():
        actions[~random] = act_batch(states[~random])
    return actions


def evaluate(act_batch: Callable[[np.ndarray], np.ndarray], make_vec_env: Callable[[int], Any], seed: int,
             episodes: int = 10, eval_eps: float = 0.0, device: torch.device | str = "cpu",
             num_envs: int = 1, discount: float = 1.0, clip_rewards: bool = False) -> np.ndarray:
    """Raw returns of ``episodes`` evaluation episodes, played ``num_envs`` at a time (docs/DESIGN.md §3);
    with ``discount`` < 1 discounted returns, Σ_t γ^t r_t, and with ``clip_rewards`` of clip(r, −1, 1)
    (what a learner's value estimates, e.g. FQE's, are compared with).

    Episode k starts from ``reset(seed=seed + 100 + k)`` and draws its ε-random actions
    (probability ``eval_eps``) from a generator of its own (seeded ``(seed + 100, k)``), so a
    deterministic policy gets the same per-episode returns whatever ``num_envs`` is. The policy
    acts on all running envs with one batched call. Torch sampling inside ``act_batch`` (BCQ's
    VAE) uses a forked stream seeded ``seed + 100``; the global torch state of the CPU and of
    ``device`` is restored afterwards, so evaluating never changes the training run.
    """
    n = max(1, min(num_envs, episodes))
    env = make_vec_env(n)
    rngs = [np.random.default_rng([seed + 100, k]) for k in range(episodes)]
    returns = np.zeros(episodes)
    weight = np.ones(n)                         # γ^t of each env's current step
    episode = np.arange(n)                      # the episode each env is playing
    running = np.ones(n, dtype=bool)
    device = torch.device(device)
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed + 100)
        states = env.reset(seeds=[seed + 100 + k for k in episode])
        upcoming = n
        while running.any():
            random = [eval_eps > 0 and run and rngs[k].random() < eval_eps for k, run in zip(episode, running)]
            if all(random):
                actions = np.stack([random_actions(env.action_space, rngs[k], 1)[0] for k in episode])
            else:
                actions = np.asarray(act_batch(states))
                for i in np.flatnonzero(random):
                    actions[i] = random_actions(env.action_space, rngs[episode[i]], 1)[0]
            states, reward, terminated, truncated = env.step(actions)
            reward = np.clip(reward, -1.0, 1.0) if clip_rewards else reward
            returns[episode[running]] += (weight * reward)[running]
            weight *= discount
            done = terminated | truncated
            weight[done] = 1.0
            if done.any():
                for i in np.flatnonzero(done & running):
                    episode[i], upcoming = upcoming, upcoming + 1
                    running[i] = episode[i] < episodes
                seeds = [seed + 100 + k if d and run else None for k, d, run in zip(episode, done, running)]
                states = env.reset(done, seeds)
    env.close()
    return returns
