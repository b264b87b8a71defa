"""The Atari replay buffer: one uint8 frame per transition, the frame stacks rebuilt at sample time
(docs/DESIGN.md §5), in the reference file format."""
from __future__ import annotations

import glob
import os

import numpy as np
import torch

from common.data import stored
from common.data.batch import Batch, StackWindow, apply_masks
from common.data.chunks import MappedFrames, chunk_path, chunk_ranges, stored_chunks
from common.errors import UserError
from common.io import atomic_save_npy, npy_header, read_npy_into

COLUMNS = ("action", "reward", "not_done", "first_timestep")  # the per-row files, besides the frames


def stack_mask(first: np.ndarray) -> np.ndarray:
    """Which frames of a stack belong to the stack's episode.

    ``first[b, h]`` is the first-timestep flag of the frame at stack position h (0 = newest).
    The frame at position h is kept iff none of the newer positions 0..h-1 starts an episode.
    """
    keep = np.ones(first.shape, dtype=np.float32)
    keep[:, 1:] = np.cumprod(1.0 - first[:, :-1], axis=1)
    return keep


class FrameStackBuffer:
    """Atari replay: one uint8 frame per transition, stacks rebuilt at sample time (docs/DESIGN.md §5).

    Index i holds the newest frame of s_i. Then s_i = frames [i, i-1, ..., i-H+1] and
    s'_i = frames [i+1, i, ..., i-H+2], with every frame older than its stack's episode start
    zeroed, and indices wrapping around when the buffer is full. An index is never sampled when
    its s' frame is not stored (the step that ended in a truncation, whose successor row already
    belongs to the next episode; the newest row) or when its stack would cross the write pointer
    (mixing the newest and the oldest data after a wrap-around).

    Files (reference format): ``{prefix}_{action,reward,not_done,first_timestep}.npy``,
    ``{prefix}_replay_info.npy`` = [ptr, chunk] and the frames in chunks ``{prefix}_state_{end}.npy``
    covering rows [0, size] (size + 1 rows, the last one padding, as the reference writes it;
    `common.data.chunks`). Converted datasets add ``{prefix}_valid.npy``, a per-row flag that
    sampling also requires.
    """

    def __init__(self, state_shape, capacity: int, batch_size: int, device, rng: np.random.Generator,
                 storage_device="cpu"):
        self.history, *frame_shape = state_shape
        self.frame_shape = tuple(int(v) for v in frame_shape)
        self.batch_size, self.device, self.rng = int(batch_size), device, rng
        self.allocate(capacity, storage_device)

    def allocate(self, capacity: int, storage_device) -> None:
        """Empty the buffer into a fresh store of ``capacity`` rows (torch.empty does not touch the
        pages: a 1M-frame buffer costs memory only as it fills)."""
        self.capacity = int(capacity)
        self.frames = torch.empty((self.capacity, *self.frame_shape), dtype=torch.uint8, device=storage_device)
        self.action = np.zeros((self.capacity, 1), dtype=np.int64)
        self.reward = np.zeros((self.capacity, 1), dtype=np.float32)
        self.not_done = np.zeros((self.capacity, 1), dtype=np.float32)
        self.first_timestep = np.zeros(self.capacity, dtype=np.uint8)
        self.ptr = 0
        self.size = 0
        self.wrapped = False  # has the write pointer come back to 0 (old data lies after it)?
        self.valid: np.ndarray | None = None  # optional per-row sampling flags (converted DQN Replay data)

    def add(self, state, action, next_state, reward, not_done, first_timestep) -> None:
        i = self.ptr
        self.frames[i] = torch.as_tensor(state[0])
        self.action[i], self.reward[i], self.not_done[i] = action, reward, not_done
        self.first_timestep[i] = first_timestep
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.wrapped = self.wrapped or self.ptr == 0

    def bytes_per_transition(self) -> int:
        return int(np.prod(self.frame_shape)) + 8 + 4 + 4 + 1

    @staticmethod
    def staged(state, action, next_state, reward, not_done, first_timestep) -> tuple:
        """A transition to hold until `add`: only the newest frame of s is stored (a copy, so the
        env's batch of stacks can be freed)."""
        return np.array(state[:1]), action, None, reward, not_done, first_timestep

    def sampleable(self, ind: np.ndarray) -> np.ndarray:
        """Boolean mask of the indices whose s and s' stacks are both stored and consistent."""
        n = self.capacity
        if self.wrapped:
            # (A buffer filled exactly to capacity counts as wrapped, which also excludes its first
            # H-1 rows although their stacks are complete: H-1 transitions lost, kept simple.)
            # Distance from the write pointer: the newest row (d = n-1) has no stored s', and rows
            # d < H-1 have a stack reaching back past the pointer into the newest data.
            d = (ind - self.ptr) % n
            in_range = (d >= self.history - 1) & (d <= n - 2)
        else:
            in_range = ind <= self.size - 2
        successor_is_new_episode = self.first_timestep[(ind + 1) % n].astype(bool)
        ok = in_range & ~(successor_is_new_episode & (self.not_done[ind, 0] > 0))
        return ok if self.valid is None else ok & self.valid[ind].astype(bool)

    def sample_indices(self, batch_size: int) -> np.ndarray:
        ind = self.rng.integers(0, self.size, batch_size)
        bad = ~self.sampleable(ind)
        for _ in range(1000):  # rejection sampling: a handful of indices are invalid at most
            if not bad.any():
                return ind
            ind[bad] = self.rng.integers(0, self.size, int(bad.sum()))
            bad = ~self.sampleable(ind)
        raise RuntimeError(f"replay buffer of {self.size} frames has no index with a complete s and s' stack")

    def window(self, ind: np.ndarray) -> StackWindow:
        """The H + 1 frames the s and s' stacks of the given indices share, gathered in one op onto
        the training device, and the masks of the frames older than each stack's episode start."""
        offsets = np.arange(1, -self.history, -1)                     # i+1, i, ..., i-H+1
        rows = (ind[:, None] + offsets) % self.capacity               # (B, H+1)
        first = self.first_timestep[rows]
        masks = np.stack([stack_mask(first[:, 1:]), stack_mask(first[:, :-1])]).astype(np.uint8)  # (2, B, H)
        frames = self.frames.index_select(0, torch.from_numpy(rows.reshape(-1)).to(self.frames.device))
        return StackWindow(frames.to(self.device, non_blocking=True).view(*rows.shape, *frames.shape[1:]), masks)

    def stacks(self, ind: np.ndarray, window: StackWindow | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, s') uint8 stacks for the given indices on the training device (frames before an
        episode's start zeroed)."""
        frames, masks = window if window is not None else self.window(ind)
        return apply_masks(frames[:, 1:], masks[0]), apply_masks(frames[:, :-1], masks[1])

    def sample(self, batch_size: int | None = None) -> Batch:
        ind = self.sample_indices(batch_size or self.batch_size)
        window = self.window(ind)
        state, next_state = self.stacks(ind, window)
        rest = (torch.from_numpy(a[ind]).to(self.device, non_blocking=True)
                for a in (self.action, self.reward, self.not_done))
        return Batch(state, next(rest), next_state, *rest, window=window)

    @staticmethod
    def saved_as(size: int, ptr: int) -> stored.Saved:
        """What a manifest records of frame-stacked files of ``size`` rows, written by this buffer or
        by a converter (`common.data.dqn_replay`)."""
        return stored.Saved("uint8", int(size), int(ptr))

    def saved(self) -> stored.Saved:
        return self.saved_as(self.size, self.ptr)

    @staticmethod
    def files(prefix: str) -> list[str]:
        """The files loading ``prefix`` reads: the per-row files, then the frame chunks covering the
        stored rows (their ends follow from the rows of ``_reward.npy`` and the chunk size in
        ``_replay_info.npy``, which come first in the list: a caller trusts the chunks only when those
        two are checked). Without those two readable, the chunks are left out."""
        names = [*COLUMNS, "replay_info"] + (["valid"] if os.path.exists(f"{prefix}_valid.npy") else [])
        paths = [f"{prefix}_{name}.npy" for name in names]
        try:
            rows = np.load(f"{prefix}_reward.npy", mmap_mode="r").shape[0]
            chunk = int(np.load(f"{prefix}_replay_info.npy")[1])
        except (ValueError, OSError, EOFError, IndexError, TypeError):
            return paths
        return paths + [chunk_path(prefix, end) for _, end in stored_chunks(rows, chunk)]

    def save(self, prefix: str, chunk: int = 100_000) -> list[str]:
        n = self.size
        paths = [atomic_save_npy(f"{prefix}_{name}.npy", getattr(self, name)[:n]) for name in COLUMNS]
        paths.append(atomic_save_npy(f"{prefix}_replay_info.npy", np.array([self.ptr, chunk])))
        if self.valid is not None:
            paths.append(atomic_save_npy(f"{prefix}_valid.npy", self.valid[:n]))
        for start, end in chunk_ranges(n, chunk):  # rows [0, n]: the reference writes one padding row
            rows = self.frames[start:min(end, n)].cpu().numpy()
            if end == n + 1:
                rows = np.concatenate([rows, np.zeros((1, *rows.shape[1:]), np.uint8)])
            paths.append(atomic_save_npy(chunk_path(prefix, end), rows))
        return paths

    def load(self, prefix: str, how_to_create: str = "python main.py --generate_buffer", mmap: bool = False,
             capacity: int | None = None) -> None:
        """Load a buffer in the reference format; the capacity becomes the stored size (or ``capacity``,
        for an online buffer that keeps growing). The frame chunks are read through memory maps (no
        second copy in memory while loading); with ``mmap`` they stay mapped, read-only, instead of
        being copied (`MappedFrames`)."""
        stored.require(prefix, [*COLUMNS, "replay_info"], how_to_create)
        reward = stored.load(f"{prefix}_reward.npy", how_to_create)
        n = reward.shape[0]
        stored.check_rows(prefix, n, how_to_create)
        ptr, chunk = (int(v) for v in stored.integers(f"{prefix}_replay_info.npy", how_to_create, (2,),
                                                       "two integers (the write position, the rows per frame chunk)"))
        if chunk < 1:
            raise UserError(f"buffer file {prefix}_replay_info.npy gives {chunk} rows per frame chunk; expected at "
                            f"least 1; regenerate it with: {how_to_create}")
        # With mmap the frames tensor is replaced below; on the CPU torch.empty costs no memory until written.
        self.allocate(n if mmap else max(n, capacity or 0), "cpu" if mmap else self.frames.device)
        self.reward[:n] = reward.reshape(n, 1)
        self._load_rows(prefix, n, how_to_create)
        mapped = self._load_frames(prefix, n, chunk, how_to_create, mmap)
        if mmap:
            self.frames = MappedFrames(mapped, chunk, n)
        self.size = n
        self.ptr = ptr % self.capacity
        self.wrapped = ptr < n  # a buffer that never wrapped was saved with ptr == size

    def _load_rows(self, prefix: str, n: int, how_to_create: str) -> None:
        """The per-row files besides the rewards (and ``_valid.npy``, which only converted datasets have)."""
        action = stored.load(f"{prefix}_action.npy", how_to_create)
        stored.check_actions(f"{prefix}_action.npy", action, how_to_create)
        self.action[:n] = action.reshape(n, 1)
        self.not_done[:n] = stored.load(f"{prefix}_not_done.npy", how_to_create).reshape(n, 1)
        self.first_timestep[:n] = stored.load(f"{prefix}_first_timestep.npy", how_to_create).reshape(n)
        if os.path.exists(f"{prefix}_valid.npy"):
            self.valid = np.zeros(self.capacity, np.uint8)
            self.valid[:n] = stored.load(f"{prefix}_valid.npy", how_to_create).reshape(n)

    def _load_frames(self, prefix: str, n: int, chunk: int, how_to_create: str, mmap: bool) -> list[np.ndarray]:
        """Check the chunk files of the ``n`` stored rows and copy their rows into the frames (with
        ``mmap``: return them memory-mapped instead)."""
        mapped = []
        for start, end in stored_chunks(n, chunk):
            path = chunk_path(prefix, end)
            self._check_chunk(prefix, path, end - start, how_to_create)
            take = min(end, n) - start
            if mmap:
                mapped.append(stored.load(path, how_to_create, mmap_mode="r"))
            elif self.frames.device.type == "cpu":
                stored.guarded(lambda: read_npy_into(path, self.frames[start:start + take].numpy()), path, how_to_create)
            else:
                self.frames[start:start + take] = torch.from_numpy(stored.load(path, how_to_create)[:take])
        return mapped

    def _check_chunk(self, prefix: str, path: str, rows: int, how_to_create: str) -> None:
        """Refuse a missing chunk file, or one not holding ``rows`` frames of this buffer's shape."""
        if not os.path.exists(path):
            found = sorted(glob.glob(f"{glob.escape(prefix)}_state_*.npy"))
            raise UserError(f"buffer {prefix} is incomplete: {path} is missing (found {len(found)} frame chunks)")
        shape, dtype = stored.guarded(lambda: npy_header(path), path, how_to_create)
        if shape[0] != rows:
            raise UserError(f"buffer {prefix} is inconsistent: {path} holds {shape[0]} frames, expected "
                            f"{rows}; regenerate it with: {how_to_create}")
        if shape[1:] != self.frame_shape or dtype != np.uint8:
            raise UserError(f"buffer {prefix} holds frames of shape {shape[1:]} ({dtype}), expected "
                            f"{self.frame_shape} (uint8): was it generated with another --frame_size?")
