"""Buffer manifests: what a saved buffer is, and a checksum of every file, written last.

``{prefix}_manifest.json`` sits beside the reference-format files: format version, env id, kind,
state shape and dtype, action space, size, ptr, the command that created the buffer and the
SHA-256 of each file. While a buffer is being written, ``{prefix}_incomplete`` marks it (and an
older manifest is removed first), so a generation killed half-way leaves a buffer that refuses to
load instead of one that silently mixes old and new files. Buffers in the reference format, with
neither file, load with a one-line notice.
"""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np

from common.data.buffers import FrameStackBuffer, ReplayBuffer
from common.data.stored import Saved
from common.errors import UserError
from common.io import atomic_save_json, existing_ancestor, sha256

Buffer = ReplayBuffer | FrameStackBuffer

FORMAT_VERSION = 1


def manifest_path(prefix: str) -> str:
    return f"{prefix}_manifest.json"


def marker_path(prefix: str) -> str:
    return f"{prefix}_incomplete"


def describe(space) -> dict:
    if hasattr(space, "n"):
        return {"type": "Discrete", "n": int(space.n)}
    return {"type": "Box", "shape": list(space.shape), "low": np.asarray(space.low).tolist(),
            "high": np.asarray(space.high).tolist()}


def check_free_space(directory: str, nbytes: int, what: str) -> None:
    """Fail before the work starts when ``nbytes`` will not fit on the disk holding ``directory``."""
    existing = existing_ancestor(directory)
    free = shutil.disk_usage(existing).free
    if nbytes > free:
        raise UserError(f"{what} needs about {nbytes / 1e9:.2f} GB but {existing} has {free / 1e9:.2f} GB free; "
                        "free some space or choose another --out_dir")


def begin(prefix: str) -> None:
    """Mark the buffer at ``prefix`` as being written (and drop any manifest of an older buffer)."""
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    if os.path.exists(manifest_path(prefix)):
        os.remove(manifest_path(prefix))
    with open(marker_path(prefix), "w") as f:
        f.write("a buffer is being written here; if no process is writing it, it is incomplete\n")


def finish(prefix: str, paths: list[str], cfg, info, buffer: Buffer | Saved, extra: dict | None = None) -> str:
    """Write the manifest (the last file of a buffer) and remove the in-progress marker. ``buffer`` is
    the buffer written, or for files written without one (a converted dataset) its `Saved` record."""
    saved = buffer if isinstance(buffer, Saved) else buffer.saved()
    record = {
        "format_version": FORMAT_VERSION, "env": cfg.env, "kind": info.kind, "state_shape": list(info.state_shape),
        "state_dtype": saved.state_dtype, "action_space": describe(info.action_space),
        "size": saved.size, "ptr": saved.ptr, "command": cfg.command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": {os.path.basename(path): sha256(path) for path in paths}, **(extra or {}),
    }
    atomic_save_json(manifest_path(prefix), record)
    os.remove(marker_path(prefix))
    return manifest_path(prefix)


def verify(prefix: str, cfg, info, how_to_create: str) -> None:
    """Refuse an incomplete, mismatched or corrupted buffer; accept a reference one with a notice."""
    regenerate = f"regenerate it with: {how_to_create}"
    if os.path.exists(marker_path(prefix)):
        raise UserError(f"buffer {prefix} was not completely written (its generation was interrupted); {regenerate}")
    if not os.path.exists(manifest_path(prefix)):
        if os.path.exists(f"{prefix}_reward.npy"):
            print(f"note: buffer {prefix} has no manifest (reference format): loading it without checksums")
        return
    try:
        with open(manifest_path(prefix)) as f:
            record = json.load(f)
        files = record["files"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"buffer manifest {manifest_path(prefix)} is corrupted; {regenerate}") from None
    if not isinstance(record, dict) or not isinstance(files, dict) or not all(
            isinstance(name, str) and name == os.path.basename(name) and isinstance(digest, str)
            for name, digest in files.items()):
        raise UserError(f"buffer manifest {manifest_path(prefix)} is corrupted ('files' must map each file name "
                        f"to its SHA-256); {regenerate}")
    if record.get("format_version") != FORMAT_VERSION:
        raise UserError(f"buffer {prefix} has format version {record.get('format_version')}; this code reads "
                        f"version {FORMAT_VERSION}; {regenerate}")
    expected = {"env": cfg.env, "state_shape": list(info.state_shape), "action_space": describe(info.action_space)}
    for key, value in expected.items():
        if record.get(key) != value:
            raise UserError(f"buffer {prefix} was generated with {key} {record.get(key)}, but this run has {value}; "
                            f"use the matching --env/preprocessing flags or {regenerate}")
    directory = os.path.dirname(prefix) or "."
    for name, digest in files.items():
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise UserError(f"buffer file {path} is missing; {regenerate}")
        if not os.path.isfile(path) or sha256(path) != digest:
            raise UserError(f"buffer file {path} is corrupted (its SHA-256 does not match the manifest); {regenerate}")
    unlisted = [path for path in loaded_files(prefix, info) if os.path.basename(path) not in files]
    if unlisted:
        raise UserError(f"buffer manifest {manifest_path(prefix)} is corrupted (it lists no checksum for "
                        f"{os.path.basename(unlisted[0])}); {regenerate}")


def loaded_files(prefix: str, info) -> list[str]:
    """The files that loading the buffer at ``prefix`` reads, each of which its manifest must list
    (`ReplayBuffer.files`, `FrameStackBuffer.files`)."""
    from common.envs.make import ATARI

    return (FrameStackBuffer if info.kind == ATARI else ReplayBuffer).files(prefix)
