"""The DQN Replay Dataset (Agarwal et al. 2020; Dopamine's ``OutOfGraphReplayBuffer`` checkpoints):
``--dataset dqn_replay:DIR --ckpts N,...``.

Converted once, streaming, into this project's frame-stacked buffer format under ``buffers/`` with a
manifest; later runs find the manifest and memory-map the frames. Dopamine's layout is kept row for
row (each checkpoint in chronological order): its ``stack - 1`` zero frames after every terminal give
the zero padding at episode starts, so no row is flagged as an episode start, and a per-row ``valid``
flag carries Dopamine's own sampling rule (its invalid range around the write cursor, no terminal
inside a stack, the padding rows of an unfilled buffer).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time
import zlib

import numpy as np

from common.data import manifest
from common.data.buffers import FrameStackBuffer
from common.data.chunks import ChunkWriter
from common.errors import UserError
from common.io import atomic_save_npy, read_header, read_into

DOPAMINE_STACK = 4  # frames per state in the DQN Replay Dataset
STORE = ("observation", "action", "reward", "terminal")


def parse_ckpts(text: str | None) -> list[int]:
    """``--ckpts 49,50`` → [49, 50]; a clear error for anything else."""
    if text is None:
        raise UserError("--dataset dqn_replay:DIR needs --ckpts, e.g. --ckpts 49,50 (Dopamine's checkpoint numbers)")
    try:
        ckpts = [int(c) for c in re.split(r"[,\s]+", text.strip()) if c]
    except ValueError:
        raise UserError(f"--ckpts {text}: expected comma-separated checkpoint numbers, e.g. 49,50") from None
    if not ckpts or min(ckpts) < 0 or len(set(ckpts)) != len(ckpts):
        raise UserError(f"--ckpts {text}: expected distinct non-negative checkpoint numbers, e.g. 49,50")
    return ckpts


def dopamine_path(directory: str, name: str, ckpt: int) -> str:
    prefix = "$store$_" if name in STORE else ""
    return os.path.join(directory, f"{prefix}{name}_ckpt.{ckpt}.gz")


class GzipNpy:
    """A gzip-wrapped ``np.save`` read as a stream: the header first, then rows in blocks, so a 7 GB
    observation array is never held in memory (only one block is)."""

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise UserError(f"DQN Replay file {path} is missing (expected Dopamine's $store$_{{observation,action,"
                            f"reward,terminal}}_ckpt.N.gz, add_count_ckpt.N.gz and invalid_range_ckpt.N.gz)")
        self.path = path
        self.file = gzip.open(path, "rb")
        try:
            shape, fortran, dtype = read_header(self.file)
        except (ValueError, OSError, EOFError, zlib.error) as err:
            self.close()
            raise damaged(path, err) from None
        if fortran or dtype.hasobject:
            self.close()
            raise UserError(f"DQN Replay file {path} holds a {'Fortran-ordered' if fortran else 'pickled'} array; "
                            "expected a plain np.save of a C-ordered array")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize

    def blocks(self, rows: int):
        """Yield (first row, array of up to ``rows`` rows) until the array's end."""
        start = 0
        while start < self.shape[0]:
            count = min(rows, self.shape[0] - start)
            block = np.empty((count, *self.shape[1:]), self.dtype)
            self.read_into(block)
            yield start, block
            start += count

    def read_into(self, out: np.ndarray) -> None:
        try:
            read_into(self.file, out, self.path)
        except (OSError, EOFError, zlib.error) as err:
            raise damaged(self.path, err) from None

    def read(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        if out.size:
            self.read_into(out)
        return out

    def close(self) -> None:
        self.file.close()


def damaged(path: str, err: Exception) -> UserError:
    return UserError(f"DQN Replay file {path} is truncated or corrupted ({str(err).splitlines()[0][:80]}); "
                     "download or copy it again")


def read_small(directory: str, name: str, ckpt: int) -> np.ndarray:
    stream = GzipNpy(dopamine_path(directory, name, ckpt))
    try:
        return stream.read()
    finally:
        stream.close()


def dopamine_order_and_valid(terminal: np.ndarray, add_count: int, invalid_range: np.ndarray,
                             stack: int) -> tuple[np.ndarray, np.ndarray]:
    """The Dopamine indices of a checkpoint in chronological order (oldest first; an unfilled buffer
    keeps its first ``add_count`` rows) and, per index, whether Dopamine would sample it
    (``OutOfGraphReplayBuffer.is_valid_transition`` with update horizon 1)."""
    capacity = len(terminal)
    full = add_count >= capacity
    cursor = add_count % capacity
    index = np.arange(capacity)
    valid = np.ones(capacity, bool)
    if not full:
        valid &= (index >= stack - 1) & (index < cursor - 1)
    valid[np.asarray(invalid_range, np.int64) % capacity] = False
    for back in range(1, stack):  # a terminal among the frames before the newest ends the stack's episode
        valid &= terminal[(index - back) % capacity] == 0
    order = np.roll(index, -cursor) if full else index[:add_count]
    return order, valid


def read_checkpoint(directory: str, ckpt: int, stack: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """A checkpoint's action, reward and terminal arrays, its indices in chronological order and
    Dopamine's sampling flags (`dopamine_order_and_valid`)."""
    arrays = {name: read_small(directory, name, ckpt) for name in ("action", "reward", "terminal")}
    capacity = len(arrays["terminal"])
    for name, array in arrays.items():
        if array.ndim != 1 or len(array) != capacity:
            raise UserError(f"DQN Replay file {dopamine_path(directory, name, ckpt)} has shape {array.shape}; "
                            f"expected ({capacity},) like the checkpoint's terminals")
    add_count = int(read_small(directory, "add_count", ckpt))
    invalid_range = read_small(directory, "invalid_range", ckpt).reshape(-1)
    return (arrays, *dopamine_order_and_valid(arrays["terminal"], add_count, invalid_range, stack))


def open_observations(directory: str, ckpt: int, capacity: int, frame_shape: tuple) -> GzipNpy:
    """The checkpoint's observation stream, refused unless it holds ``capacity`` uint8 frames of ``frame_shape``."""
    stream = GzipNpy(dopamine_path(directory, "observation", ckpt))
    expected = (capacity, *frame_shape)
    if stream.shape != expected or stream.dtype != np.uint8:
        stream.close()
        raise UserError(f"DQN Replay file {stream.path} holds {stream.dtype} {stream.shape}; expected uint8 "
                        f"{expected} (Atari frames of --frame_size {frame_shape[-1]})")
    return stream


def copy_frames(stream: GzipNpy, destination: np.ndarray, frames: ChunkWriter, block_rows: int) -> None:
    """Stream the observations block by block to their rows (``destination[i]`` of Dopamine index i)."""
    try:
        for start, block in stream.blocks(block_rows):
            frames.scatter(destination[start:start + len(block)], block)
    finally:
        stream.close()


def convert_dqn_replay(directory: str, ckpts: list[int], prefix: str, frame_shape: tuple, stack: int,
                       block_rows: int = 10_000, chunk: int = 100_000) -> dict:
    """Write checkpoints ``ckpts`` of a DQN Replay directory as one frame-stacked buffer at ``prefix``
    (chronological per checkpoint, concatenated); returns what the manifest records."""
    segments = [(ckpt, *read_checkpoint(directory, ckpt, stack)) for ckpt in ckpts]
    n = sum(len(order) for _, _, order, _ in segments)
    if n < 2:
        raise UserError(f"DQN Replay checkpoints {ckpts} in {directory} hold {n} transitions; nothing to train on")
    if not any(valid[order].any() for _, _, order, valid in segments):
        raise UserError(f"DQN Replay checkpoints {ckpts} in {directory} hold no transition Dopamine would sample")
    row_bytes = int(np.prod(frame_shape)) + 8 + 4 + 4 + 1 + 1
    manifest.check_free_space(os.path.dirname(prefix) or ".", n * row_bytes, f"converting {n} DQN Replay transitions")
    files = {name: np.empty(n, dtype) for name, dtype in
             (("action", np.int64), ("reward", np.float32), ("not_done", np.float32), ("valid", np.uint8))}
    frames = ChunkWriter()
    offset = 0
    try:
        frames.open(prefix, n, frame_shape, chunk)
        for ckpt, arrays, order, valid in segments:
            rows = slice(offset, offset + len(order))
            files["action"][rows] = arrays["action"][order]
            files["reward"][rows] = np.clip(arrays["reward"][order], -1.0, 1.0)  # as our Atari buffers store it
            files["not_done"][rows] = 1.0 - arrays["terminal"][order]
            files["valid"][rows] = valid[order]
            destination = np.full(len(arrays["terminal"]), -1, np.int64)
            destination[order] = np.arange(offset, offset + len(order))
            copy_frames(open_observations(directory, ckpt, len(destination), frame_shape), destination, frames,
                        block_rows)
            offset += len(order)
        paths = frames.finish()
    except OSError as err:  # the disk filled up or went away while writing
        frames.abort()
        raise UserError(f"writing the converted buffer {prefix}_* failed ({err.strerror or err}); "
                        "free some space or choose another --out_dir") from None
    except BaseException:
        frames.abort()
        raise
    paths += [atomic_save_npy(f"{prefix}_{name}.npy", files[name].reshape(n, 1) if name != "valid" else files[name])
              for name in files]
    paths.append(atomic_save_npy(f"{prefix}_first_timestep.npy", np.zeros(n, np.uint8)))  # zero frames pad instead
    paths.append(atomic_save_npy(f"{prefix}_replay_info.npy", np.array([n, chunk])))
    return {"paths": paths, "size": n, "ptr": n}


def dqn_replay_prefix(cfg, directory: str, ckpts: list[int]) -> str:
    """Where the converted checkpoints are cached: one name per source folder, env and checkpoints."""
    tag = hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:8]
    name = f"DQNReplay_{cfg.env.replace('/', '_')}_{tag}_ckpt{'-'.join(map(str, ckpts))}"
    return os.path.join(cfg.out_dir, "buffers", name)


def source_record(directory: str, ckpts: list[int]) -> dict:
    """Size and modification time of every source file: a changed source invalidates the cache."""
    record = {}
    for ckpt in ckpts:
        for name in (*STORE, "add_count", "invalid_range"):
            path = dopamine_path(directory, name, ckpt)
            if not os.path.isfile(path):
                GzipNpy(path)  # raises the missing-file error
            stat = os.stat(path)
            record[os.path.basename(path)] = [stat.st_size, int(stat.st_mtime)]
    return {"directory": os.path.abspath(directory), "ckpts": ckpts, "files": record}


def converted(prefix: str, source: dict) -> bool:
    """Is the buffer at ``prefix`` completely converted from this very ``source``?"""
    try:
        with open(manifest.manifest_path(prefix)) as f:
            return json.load(f).get("source") == source and not os.path.exists(manifest.marker_path(prefix))
    except (OSError, ValueError):
        return False


def check_request(cfg, info, directory: str) -> list[int]:
    """Refuse a non-Atari env, a missing folder or another stack size; returns the checkpoints."""
    from common.envs.make import ATARI

    if info.kind != ATARI:
        raise UserError(f"--dataset dqn_replay holds Atari frames; {cfg.env} is not an Atari env "
                        "(use the game's id, e.g. PongNoFrameskip-v4)")
    if not os.path.isdir(directory):
        raise UserError(f"--dataset dqn_replay:{directory}: no such folder (expected Dopamine's replay_logs folder)")
    ckpts = parse_ckpts(getattr(cfg, "ckpts", None))
    if cfg.state_history != DOPAMINE_STACK:
        raise UserError(f"--dataset dqn_replay: the DQN Replay Dataset was written with stacks of {DOPAMINE_STACK} "
                        f"frames (its zero padding is {DOPAMINE_STACK - 1} frames); drop --state_history {cfg.state_history}")
    return ckpts


def prepare_dqn_replay(cfg, info, directory: str) -> str:
    """Convert the checkpoints once (streaming) and return the cached buffer's prefix."""
    ckpts = check_request(cfg, info, directory)
    prefix = dqn_replay_prefix(cfg, directory, ckpts)
    source = source_record(directory, ckpts)
    if converted(prefix, source):
        print(f"[dataset] using the converted DQN Replay buffer {prefix}")
        return prefix
    print(f"[dataset] converting DQN Replay checkpoints {ckpts} of {directory} into {prefix}_* (once)")
    start = time.time()
    manifest.begin(prefix)
    result = convert_dqn_replay(directory, ckpts, prefix, (cfg.frame_size, cfg.frame_size), cfg.state_history)
    manifest.finish(prefix, result["paths"], cfg, info, FrameStackBuffer.saved_as(result["size"], result["ptr"]),
                    extra={"source": source})
    print(f"[dataset] {result['size']} transitions converted in {time.time() - start:.0f} s")
    return prefix
