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


def read_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) from the header of an ``np.save`` stream, which it then points past."""
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    return tuple(shape), fortran, np.dtype(dtype)


def npy_header(path: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype stored in a ``.npy`` file, read from its header only."""
    with open(path, "rb") as f:
        shape, _, dtype = read_header(f)
    return shape, dtype


def read_npy_into(path: str, out: np.ndarray) -> None:
    """Read the first ``len(out)`` rows of a C-ordered ``.npy`` file straight into ``out``
    (no temporary copy: a 7 GB buffer loads in 7 GB)."""
    with open(path, "rb") as f:
        _, fortran, _ = read_header(f)
        if fortran:
            raise ValueError(f"{path} is Fortran-ordered")
        read_into(f, out, path)


def read_into(f, out: np.ndarray, path: str) -> None:
    """Fill ``out`` with the next bytes of the stream ``f`` (an EOFError naming ``path`` if it ends first)."""
    view = memoryview(out.reshape(-1).view(np.uint8))
    read = 0
    while read < len(view):
        got = f.readinto(view[read:])
        if not got:
            raise EOFError(f"{path} ends after {read} of {len(view)} bytes")
        read += got
