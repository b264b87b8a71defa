"""Atomic file writes (every artifact is written to a temporary name beside it, then renamed), their
SHA-256 records, and the locks that keep two runs from writing one setting's files at once."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

from common.errors import UserError


def existing_ancestor(path: str) -> str:
    """``path`` itself or its nearest ancestor that exists (where a folder would be created; "." ends a
    relative path): what decides whether the path can be written."""
    while not os.path.exists(path):
        path = os.path.dirname(path) or "."
    return path


@contextmanager
def atomic_open(path: str) -> Iterator[Any]:
    """Open a temporary file next to ``path`` for binary writing; rename it onto ``path`` on success."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would create it (mkstemp makes 0600)
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


def atomic_save_text(path: str, text: str) -> str:
    with atomic_open(path) as f:
        f.write(text.encode())
    return path


def atomic_save_json(path: str, obj: Any) -> str:
    return atomic_save_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def record_checksums(path: str, files: list[str]) -> str:
    """Write the SHA-256 of each of ``files`` (all beside ``path``) to the JSON file ``path``, atomically."""
    return atomic_save_json(path, {"files": {os.path.basename(f): sha256(f) for f in files}})


def checksum_problem(path: str, files: list[str]) -> str | None:
    """What is wrong with ``files`` against the SHA-256s that ``path`` records, in words; None when each
    one matches (``path`` must exist: whether a missing record is acceptable is the caller's call)."""
    try:
        with open(path) as f:
            recorded = json.load(f)["files"]
        if not isinstance(recorded, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        return f"{path} is unreadable or damaged"
    for file in files:
        digest = recorded.get(os.path.basename(file))
        if digest is None:
            return f"{path} records no checksum for {os.path.basename(file)}"
        if not os.path.isfile(file):
            return f"{file} is missing"
        if sha256(file) != digest:
            return f"{file} is corrupted (its SHA-256 differs from the one recorded when it was written)"
    return None


def read_npy_flag(flag: str, source: str, what: str) -> np.ndarray:
    """The array of the ``.npy`` file a flag names (e.g. ``--item_embeddings``), with one-line errors for a
    missing, unreadable or ``.npz`` file; ``what`` says what the file should hold."""
    if not os.path.isfile(source):
        raise UserError(f"{flag} {source}: no such file; give {what}")
    try:
        array = np.load(source)
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{flag} {source}: not a readable .npy ({str(err).splitlines()[0][:80]})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise UserError(f"{flag} {source}: an .npz archive; give one array saved with np.save")
    return array


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


@contextmanager
def run_lock(out_dir: str, name: str, what: str, shared: bool = False, wait: bool = False) -> Iterator[None]:
    """Hold the lock ``{out_dir}/.{name}.lock`` for the block: exclusive for a run that writes ``name``'s
    files, ``shared`` for one that only reads them (runs that read one buffer run side by side). A
    conflicting run stops at once with a one-line error instead of destroying the other's files. The
    lock (``flock``) dies with its process, so a killed run never blocks the next one; the last holder
    removes the file (and ``out_dir`` if the run created it and left it empty). With ``wait`` a
    conflicting run waits for the lock instead."""
    path = os.path.join(out_dir, f".{name}.lock")
    created = not os.path.isdir(out_dir)
    while True:
        try:
            os.makedirs(out_dir, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except (PermissionError, NotADirectoryError, FileExistsError) as err:
            raise UserError(f"cannot write in {out_dir} ({err.strerror}); choose another --out_dir") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.read(fd, 300).decode(errors="replace").strip() or "a run that reads it"
            os.close(fd)
            raise UserError(f"{what} in {out_dir} is in use by another run now ({holder}); wait for it to finish, "
                            "or give this run another --out_dir") from None
        try:  # a finishing holder may have removed the file between our open and our lock: lock the new one
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    if not shared:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}".encode())
    try:
        yield
    finally:
        try:  # the last holder (no one else holds it, shared or not) removes the file
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.remove(path)
        except OSError:
            pass
        os.close(fd)
        if created:
            try:
                os.rmdir(out_dir)
            except OSError:
                pass
