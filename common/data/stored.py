"""A saved buffer's files: reading them, where every failure is a one-line `UserError` naming the file
and the command that recreates it, and `Saved`, what its manifest records besides the files."""
from __future__ import annotations

import os
from typing import Callable, NamedTuple

import numpy as np

from common.errors import UserError


class Saved(NamedTuple):
    """A buffer as its manifest describes it (`ReplayBuffer.saved`, `FrameStackBuffer.saved`)."""
    state_dtype: str  # NumPy name of the stored states' dtype ("uint8" for frames)
    size: int         # rows stored
    ptr: int          # the write position


def require(prefix: str, suffixes: list[str], how_to_create: str) -> None:
    """Refuse a buffer missing any of ``{prefix}_{suffix}.npy``."""
    missing = [s for s in suffixes if not os.path.exists(f"{prefix}_{s}.npy")]
    if missing:
        raise UserError(f"no replay buffer at {prefix}_*.npy (missing {', '.join(missing)}); "
                        f"create it with: {how_to_create}")


def guarded(read: Callable, path: str, how_to_create: str):
    """Run ``read``; a truncated or corrupted file becomes a one-line error."""
    try:
        return read()
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"buffer file {path} is truncated or corrupted ({str(err).splitlines()[0][:80]}); "
                        f"regenerate it with: {how_to_create}") from None


def load(path: str, how_to_create: str, mmap_mode: str | None = None) -> np.ndarray:
    return guarded(lambda: np.load(path, mmap_mode=mmap_mode), path, how_to_create)


def integers(path: str, how_to_create: str, shape: tuple, what: str) -> np.ndarray:
    """An array of integers of exactly ``shape`` (``()``: a scalar), else a one-line error naming the file."""
    array = load(path, how_to_create)
    if not isinstance(array, np.ndarray) or array.shape != shape or not np.issubdtype(array.dtype, np.integer):
        found = f"{array.dtype} values of shape {array.shape}" if isinstance(array, np.ndarray) else "no array"
        raise UserError(f"buffer file {path} holds {found}; expected {what}; regenerate it with: {how_to_create}")
    return array


def check_rows(prefix: str, n: int, how_to_create: str) -> None:
    if n == 0:
        raise UserError(f"buffer {prefix} is empty; regenerate it with: {how_to_create}")


def check_actions(path: str, action: np.ndarray, how_to_create: str) -> None:
    """Discrete actions are indices: a negative (or NaN) one means a damaged or foreign file."""
    if len(action) and not action.min() >= 0:
        raise UserError(f"buffer file {path} holds action {action.min():g}; discrete actions are indices "
                        f"0, 1, ...: regenerate it with: {how_to_create}")
