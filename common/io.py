"""Atomic file writes: every artifact is written to a temporary name beside it, then renamed."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch


@contextmanager
def atomic_open(path: str) -> Iterator[Any]:
    """Open a temporary file next to ``path`` for binary writing; rename it onto ``path`` on success."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save_npy(path: str, array: Any) -> str:
    """`np.save` to exactly ``path`` (which should end in .npy), atomically."""
    with atomic_open(path) as f:
        np.save(f, np.asarray(array))
    return path


def atomic_torch_save(path: str, obj: Any) -> str:
    with atomic_open(path) as f:
        torch.save(obj, f)
    return path


def atomic_save_json(path: str, obj: Any) -> str:
    with atomic_open(path) as f:
        f.write((json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())
    return path
