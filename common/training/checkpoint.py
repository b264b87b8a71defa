"""Checkpoints that let a killed run continue (``--checkpoint_freq``, ``--resume``).

A checkpoint is a folder ``checkpoints/{stage}_{setting}/step_{N}`` holding ``state.pt``: every
network, target network and optimizer of the agent, its iteration counter, the RNG states of
Python, NumPy, torch (CPU and CUDA) and of the run's own generator (buffer sampling, exploration),
the evaluation history and the log rows; an online stage adds its replay buffers (reference files).
The folder is written under a temporary name, with ``checksums.json`` (the SHA-256 of every file
in it), and renamed into place, so the newest ``step_*`` folder is always complete; the older one
is removed after it lands (a disk that fills up meanwhile leaves it intact), and all of them once
the stage finishes (so checkpoints need room for two). Resuming verifies the checksums and loads
tensors and plain values only. Offline training resumed on CPU reproduces the uninterrupted run's
results exactly.
"""
from __future__ import annotations

import errno
import glob
import os
import random
import shutil
import tempfile
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from common.errors import UserError
from common.learning.agent import Agent
from common.io import atomic_torch_save, checksum_problem, record_checksums

CHECKSUMS = "checksums.json"


def checkpoint_dir(cfg, stage: str) -> str:
    return os.path.join(cfg.out_dir, "checkpoints", f"{stage}_{cfg.setting}")


def rng_states(rng: np.random.Generator) -> dict[str, Any]:
    """Every RNG's state, in types a ``weights_only`` load reads (NumPy's key array as a tensor)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position,
                                                   has_gauss, gauss),
            "torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "generator": rng.bit_generator.state}


def restore_rng_states(states: dict[str, Any], rng: np.random.Generator) -> None:
    random.setstate(states["python"])
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    rng.bit_generator.state = states["generator"]


@runtime_checkable
class Stateful(Protocol):
    """What keeps its state as torch modules and optimizers do (h-DQN's goal statistics too)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


def agent_state(agent) -> dict[str, Any]:
    """Every module and optimizer the agent holds (targets included), the state of the learners it
    holds (h-DQN's two DQNs), and its iteration counter."""
    parts = {name: agent_state(value) if isinstance(value, Agent) else value.state_dict()
             for name, value in vars(agent).items() if isinstance(value, (Agent, Stateful))}
    return {"parts": parts, "iterations": agent.iterations}


def load_agent_state(agent, state: dict[str, Any]) -> None:
    for name, value in state["parts"].items():
        part = getattr(agent, name)
        if isinstance(part, Agent):
            load_agent_state(part, value)
        else:
            part.load_state_dict(value)
    agent.iterations = state["iterations"]


class DiskFull(UserError):
    """The disk filled up while a checkpoint was written; the previous checkpoint is intact."""

    exit_code = 1


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def save(cfg, stage: str, step: int, state: dict[str, Any], buffers: dict[str, Any]) -> str:
    """Write checkpoint ``step`` atomically (temporary folder with the SHA-256 of every file, then
    rename), each of ``buffers`` under its name; drop the older ones only once it landed. A full
    disk leaves the previous one as it was."""
    root = checkpoint_dir(cfg, stage)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"step_{step}")
    tmp = tempfile.mkdtemp(dir=root, prefix=f".step_{step}.", suffix=".tmp")
    try:
        for name, buffer in buffers.items():
            buffer.save(os.path.join(tmp, name))
        atomic_torch_save(os.path.join(tmp, "state.pt"), {"step": step, **state})
        record_checksums(os.path.join(tmp, CHECKSUMS), [os.path.join(tmp, name) for name in sorted(os.listdir(tmp))])
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            survivor = complete(root)
            kept = (f"the checkpoint {survivor[-1]} is intact: free some space, then continue with the same command "
                    "plus --resume" if survivor else "no earlier checkpoint exists: free some space and run it again")
            raise DiskFull(f"the disk is full: checkpoint step {step} could not be written to {root} "
                           f"({os.strerror(err.errno)}); {kept}") from None
        raise
    for old in complete(root):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def complete(root: str) -> list[str]:
    """The complete checkpoint folders under ``root``, oldest first (temporary folders are skipped)."""
    found = [path for path in glob.glob(os.path.join(root, "step_*")) if os.path.exists(os.path.join(path, "state.pt"))]
    return sorted(found, key=lambda path: int(path.rsplit("_", 1)[1]))


def newest(cfg, stage: str) -> str | None:
    found = complete(checkpoint_dir(cfg, stage))
    return found[-1] if found else None


def load(path: str, device) -> dict[str, Any]:
    """The state of the checkpoint folder ``path``, its files checked against their SHA-256s first and
    read as tensors and plain values only (``weights_only``)."""
    start_over = "run the same command without --resume to start over (only the newest checkpoint is kept)"
    files = [os.path.join(path, name) for name in sorted(os.listdir(path)) if name != CHECKSUMS]
    if not os.path.exists(os.path.join(path, CHECKSUMS)):
        raise UserError(f"checkpoint {path} has no {CHECKSUMS} (an older version wrote it, or it was damaged), so it "
                        f"cannot be verified; {start_over}")
    problem = checksum_problem(os.path.join(path, CHECKSUMS), files)
    if problem:
        raise UserError(f"checkpoint {path} cannot be used: {problem}; {start_over}")
    try:
        return torch.load(os.path.join(path, "state.pt"), map_location=device, weights_only=True)
    except Exception as err:  # intact bytes that are not a checkpoint of this code
        raise UserError(f"checkpoint {path} cannot be read ({type(err).__name__}); {start_over}") from None


def remove_all(cfg, stage: str) -> None:
    """A finished stage needs no checkpoints (an online one holds a copy of its replay buffer)."""
    shutil.rmtree(checkpoint_dir(cfg, stage), ignore_errors=True)
    parent = os.path.dirname(checkpoint_dir(cfg, stage))
    if os.path.isdir(parent) and not os.listdir(parent):
        os.rmdir(parent)
