"""Device choice, seeding, action selection with ε and evaluation: one definition each."""
from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np
import torch

from common.errors import UserError


def get_device(name: str | None = None) -> torch.device:
    """``cuda`` when available unless told otherwise; a clear error for an unavailable device."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: only cpu and cuda are supported")
    return device


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


def random_action(space, rng: np.random.Generator):
    """A uniformly random action of a Discrete or Box space, drawn from ``rng``."""
    if hasattr(space, "n"):
        return int(rng.integers(space.n))
    return rng.uniform(space.low, space.high).astype(space.dtype)


def epsilon_greedy(act: Callable[[np.ndarray], Any], state: np.ndarray, eps: float, space,
                   rng: np.random.Generator):
    """With probability ``eps`` a uniformly random action of ``space``, otherwise ``act(state)``."""
    if eps > 0 and rng.random() < eps:
        return random_action(space, rng)
    return act(state)


def run_episode(env, choose: Callable[[np.ndarray], Any], seed: int | None = None) -> tuple[float, int]:
    """Play one episode; returns its raw (unclipped) return and length."""
    state, _ = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        state, reward, terminated, truncated, _ = env.step(choose(state))
        total += float(reward)
        steps += 1
        done = terminated or truncated
    return total, steps


def evaluate(act: Callable[[np.ndarray], Any], make_env: Callable[[], Any], seed: int, episodes: int = 10,
             eval_eps: float = 0.0, device: torch.device | str = "cpu") -> np.ndarray:
    """Raw returns of ``episodes`` episodes on a fresh env seeded ``seed + 100`` (DESIGN §3).

    With probability ``eval_eps`` an action is uniformly random. Those draws, and any torch
    sampling inside ``act``, come from generators of their own (seeded ``seed + 100``; the global
    torch state of the CPU and of ``device`` is restored afterwards), so evaluating never changes
    the training run.
    """
    env = make_env()
    rng = np.random.default_rng(seed + 100)
    device = torch.device(device)
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # a policy that samples (BCQ's VAE) uses its own stream
        torch.manual_seed(seed + 100)
        returns = [run_episode(env, lambda s: epsilon_greedy(act, s, eval_eps, env.action_space, rng),
                               seed + 100 if k == 0 else None)[0] for k in range(episodes)]
    env.close()
    return np.array(returns)
