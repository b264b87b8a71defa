"""Replay buffers in the reference file formats (DESIGN §5, §6).

`ReplayBuffer` stores whole (s, a, s', r, not_done) rows: vector states and MinAtar images.
`FrameStackBuffer` stores one uint8 frame per transition and rebuilds the Atari frame stacks at
sample time. Both sample uniformly with a `numpy.random.Generator`, gather with batched indexing
(no Python loop over samples) and return a `Batch` of float tensors on the training device.
"""
from __future__ import annotations

import glob
import os
from typing import NamedTuple

import numpy as np
import torch

from common.errors import UserError
from common.io import atomic_save_npy, npy_header, read_npy_into


class StackWindow(NamedTuple):
    """The frames a batch's s and s' stacks are cut from: s = frames[:, 1:], s' = frames[:, :-1], each
    times its mask. Augmentation cuts its views straight from it (`common.learning.augment.augmented_views`)."""
    frames: torch.Tensor  # (B, H+1, h, w) uint8: frames i+1, i, ..., i-H+1 of each index i, unmasked
    masks: np.ndarray     # (2, B, H) uint8: which frames of s (masks[0]) and s' (masks[1]) are kept


class Batch(NamedTuple):
    state: torch.Tensor       # (B, *state_shape) float32; Atari: uint8 stacks (the network converts)
    action: torch.Tensor      # (B, 1) int64 (discrete) or (B, action_dim) float32
    next_state: torch.Tensor  # like state
    reward: torch.Tensor      # (B, 1) float32
    not_done: torch.Tensor    # (B, 1) float32, 0 at true terminals only
    window: StackWindow | None = None  # Atari buffers: what the stacks were cut from


def apply_masks(stacks: torch.Tensor, masks: np.ndarray) -> torch.Tensor:
    """``stacks`` (N, H, h, w) with the frames where ``masks`` (N, H) is 0 zeroed. Only a few stacks
    of a batch cross an episode start, so only those rows are copied and multiplied."""
    rows = np.flatnonzero(~masks.all(axis=1))
    if rows.size == 0:
        return stacks
    stacks = stacks.clone()
    index = torch.from_numpy(rows).to(stacks.device, non_blocking=True)
    keep = torch.from_numpy(masks[rows]).to(stacks.device, non_blocking=True)[..., None, None]
    stacks[index] = stacks.index_select(0, index) * keep
    return stacks


def _require(prefix: str, suffixes: list[str], how_to_create: str) -> None:
    missing = [s for s in suffixes if not os.path.exists(f"{prefix}_{s}.npy")]
    if missing:
        raise UserError(f"no replay buffer at {prefix}_*.npy (missing {', '.join(missing)}); "
                        f"create it with: {how_to_create}")


def _guarded(read, path: str, how_to_create: str):
    """Run ``read``; a truncated or corrupted file becomes a one-line error."""
    try:
        return read()
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"buffer file {path} is truncated or corrupted ({str(err).splitlines()[0][:80]}); "
                        f"regenerate it with: {how_to_create}") from None


def _load(path: str, how_to_create: str, mmap_mode=None) -> np.ndarray:
    return _guarded(lambda: np.load(path, mmap_mode=mmap_mode), path, how_to_create)


def _integers(path: str, how_to_create: str, shape: tuple, what: str) -> np.ndarray:
    """An array of integers of exactly ``shape`` (``()``: a scalar), else a one-line error naming the file."""
    array = _load(path, how_to_create)
    if not isinstance(array, np.ndarray) or array.shape != shape or not np.issubdtype(array.dtype, np.integer):
        found = f"{array.dtype} values of shape {array.shape}" if isinstance(array, np.ndarray) else "no array"
        raise UserError(f"buffer file {path} holds {found}; expected {what}; regenerate it with: {how_to_create}")
    return array


def _check_actions(path: str, action: np.ndarray, how_to_create: str) -> None:
    """Discrete actions are indices: a negative (or NaN) one means a damaged or foreign file."""
    if len(action) and not action.min() >= 0:
        raise UserError(f"buffer file {path} holds action {action.min():g}; discrete actions are indices "
                        f"0, 1, ...: regenerate it with: {how_to_create}")


class ReplayBuffer:
    """A circular buffer of whole transitions (vector states, MinAtar images, continuous actions).

    Files: ``{prefix}_{state,action,next_state,reward,not_done}.npy`` and ``{prefix}_ptr.npy``,
    as written by the reference code, whose buffers load here unchanged.
    """

    def __init__(self, state_shape, capacity: int, batch_size: int, device, rng: np.random.Generator,
                 state_dtype=np.float32, action_shape=(1,), action_dtype=np.int64):
        self.capacity, self.batch_size, self.device, self.rng = int(capacity), int(batch_size), device, rng
        self.state = np.empty((self.capacity, *state_shape), dtype=state_dtype)
        self.next_state = np.empty_like(self.state)
        self.action = np.empty((self.capacity, *action_shape), dtype=action_dtype)
        self.reward = np.empty((self.capacity, 1), dtype=np.float32)
        self.not_done = np.empty((self.capacity, 1), dtype=np.float32)
        self.ptr = 0
        self.size = 0

    def add(self, state, action, next_state, reward, not_done, first_timestep=False) -> None:
        i = self.ptr
        self.state[i], self.action[i], self.next_state[i] = state, action, next_state
        self.reward[i], self.not_done[i] = reward, not_done
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def bytes_per_transition(self) -> int:
        return 2 * self.state[0].nbytes + self.action[0].nbytes + 8

    @staticmethod
    def staged(state, action, next_state, reward, not_done, first_timestep) -> tuple:
        """A transition to hold until `add` (copies, so the env's batch arrays can be freed)."""
        return np.array(state), np.array(action), np.array(next_state), reward, not_done, first_timestep

    def sample(self, batch_size: int | None = None) -> Batch:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        ind = self.rng.integers(0, self.size, batch_size or self.batch_size)
        return Batch(*(self._to_device(a[ind]) for a in
                       (self.state, self.action, self.next_state, self.reward, self.not_done)))

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array).to(self.device, non_blocking=True)
        return tensor if tensor.dtype == torch.int64 else tensor.float()

    def save(self, prefix: str) -> list[str]:
        """Write the reference files (each atomically); returns the paths written."""
        n = self.size
        paths = [atomic_save_npy(f"{prefix}_{name}.npy", getattr(self, name)[:n])
                 for name in ("state", "action", "next_state", "reward", "not_done")]
        paths.append(atomic_save_npy(f"{prefix}_ptr.npy", np.array(self.ptr)))
        return paths

    def load(self, prefix: str, how_to_create: str = "python main.py --generate_buffer", mmap: bool = False,
             capacity: int | None = None) -> None:
        """Load a buffer in the reference format into a capacity of at least the stored size (or
        ``capacity``); with ``mmap`` the states stay in the files, mapped read-only (several runs
        share one copy in the page cache)."""
        names = ("state", "action", "next_state", "reward", "not_done")
        _require(prefix, [*names, "ptr"], how_to_create)
        arrays = {name: _load(f"{prefix}_{name}.npy", how_to_create, mmap_mode="r" if mmap and "state" in name else None)
                  for name in names}
        n = arrays["reward"].shape[0]
        if n == 0:
            raise UserError(f"buffer {prefix} is empty; regenerate it with: {how_to_create}")
        ptr = int(_integers(f"{prefix}_ptr.npy", how_to_create, (), "one integer (the write position)"))
        if np.issubdtype(self.action.dtype, np.integer):
            _check_actions(f"{prefix}_action.npy", arrays["action"], how_to_create)
        for name, store in (("state", self.state), ("action", self.action)):
            stored = arrays[name].shape[1:] if arrays[name].ndim > 1 else (1,)
            if int(np.prod(stored)) != int(np.prod(store.shape[1:])) or arrays[name].shape[0] != n:
                raise UserError(f"buffer {prefix} holds {name}s of shape {arrays[name].shape[1:]}, but this env's "
                                f"{name}s have shape {store.shape[1:]}: was it generated for another env?")
        size = n if mmap else max(n, capacity or 0)
        if mmap or size > self.capacity:  # np.empty costs no memory until written
            self.__init__(self.state.shape[1:], size, self.batch_size, self.device, self.rng,
                          self.state.dtype, self.action.shape[1:], self.action.dtype)
        for name, array in arrays.items():
            shape = (n, *getattr(self, name).shape[1:])
            if mmap and "state" in name:
                setattr(self, name, array.reshape(shape))
            else:
                getattr(self, name)[:n] = array.reshape(shape)
        self.size = n
        self.ptr = ptr % self.capacity


def stack_mask(first: np.ndarray) -> np.ndarray:
    """Which frames of a stack belong to the stack's episode.

    ``first[b, h]`` is the first-timestep flag of the frame at stack position h (0 = newest).
    The frame at position h is kept iff none of the newer positions 0..h-1 starts an episode.
    """
    keep = np.ones(first.shape, dtype=np.float32)
    keep[:, 1:] = np.cumprod(1.0 - first[:, :-1], axis=1)
    return keep


class MappedFrames:
    """The frames of a saved frame-stacked buffer left in its chunk files, memory-mapped read-only
    (``--mmap``): several runs on one machine share one copy in the page cache. Indexing with a
    tensor of row numbers gathers them (one NumPy gather per chunk file, not per sample)."""

    def __init__(self, chunks: list[np.ndarray], chunk: int, size: int):
        self.chunks, self.chunk = chunks, chunk
        self.shape = (size, *chunks[0].shape[1:])
        self.device = torch.device("cpu")

    def index_select(self, dim: int, rows: torch.Tensor) -> torch.Tensor:
        assert dim == 0
        rows = rows.numpy()
        out = np.empty((*rows.shape, *self.shape[1:]), dtype=np.uint8)
        which = rows // self.chunk
        for c in np.unique(which):
            sel = which == c
            out[sel] = self.chunks[c][rows[sel] - c * self.chunk]
        return torch.from_numpy(out)


class FrameStackBuffer:
    """Atari replay: one uint8 frame per transition, stacks rebuilt at sample time (DESIGN §5).

    Index i holds the newest frame of s_i. Then s_i = frames [i, i-1, ..., i-H+1] and
    s'_i = frames [i+1, i, ..., i-H+2], with every frame older than its stack's episode start
    zeroed, and indices wrapping around when the buffer is full. An index is never sampled when
    its s' frame is not stored (the step that ended in a truncation, whose successor row already
    belongs to the next episode; the newest row) or when its stack would cross the write pointer
    (mixing the newest and the oldest data after a wrap-around).

    Files (reference format): ``{prefix}_{action,reward,not_done,first_timestep}.npy``,
    ``{prefix}_replay_info.npy`` = [ptr, chunk] and the frames in chunks ``{prefix}_state_{end}.npy``
    covering rows [0, size] (size + 1 rows, the last one padding, as the reference writes it).
    Converted datasets add ``{prefix}_valid.npy``, a per-row flag that sampling also requires.
    """

    def __init__(self, state_shape, capacity: int, batch_size: int, device, rng: np.random.Generator,
                 storage_device="cpu"):
        self.history, *frame_shape = state_shape
        self.capacity, self.batch_size, self.device, self.rng = int(capacity), int(batch_size), device, rng
        # torch.empty does not touch the pages: a 1M-frame buffer costs memory only as it fills.
        self.frames = torch.empty((self.capacity, *frame_shape), dtype=torch.uint8, device=storage_device)
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
        return int(np.prod(self.frames.shape[1:])) + 8 + 4 + 4 + 1

    @staticmethod
    def staged(state, action, next_state, reward, not_done, first_timestep) -> tuple:
        """A transition to hold until `add`: only the newest frame of s is stored (a copy, 7 KB for
        84×84, so the env's batch of stacks can be freed)."""
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

    def save(self, prefix: str, chunk: int = 100_000) -> list[str]:
        n = self.size
        paths = [atomic_save_npy(f"{prefix}_{name}.npy", getattr(self, name)[:n])
                 for name in ("action", "reward", "not_done", "first_timestep")]
        paths.append(atomic_save_npy(f"{prefix}_replay_info.npy", np.array([self.ptr, chunk])))
        if self.valid is not None:
            paths.append(atomic_save_npy(f"{prefix}_valid.npy", self.valid[:n]))
        for start in range(0, n + 1, chunk):  # rows [0, n]: the reference writes one padding row
            end = min(start + chunk, n + 1)
            rows = self.frames[start:min(end, n)].cpu().numpy()
            if end == n + 1:
                rows = np.concatenate([rows, np.zeros((1, *rows.shape[1:]), np.uint8)])
            paths.append(atomic_save_npy(f"{prefix}_state_{end}.npy", rows))
        return paths

    def load(self, prefix: str, how_to_create: str = "python main.py --generate_buffer", mmap: bool = False,
             capacity: int | None = None) -> None:
        """Load a buffer in the reference format; the capacity becomes the stored size (or ``capacity``,
        for an online buffer that keeps growing). The frame chunks
        are read through memory maps (no second copy in memory while loading); with ``mmap`` they stay
        mapped, read-only, instead of being copied (`MappedFrames`)."""
        _require(prefix, ["action", "reward", "not_done", "first_timestep", "replay_info"], how_to_create)
        reward = _load(f"{prefix}_reward.npy", how_to_create)
        n = reward.shape[0]
        if n == 0:
            raise UserError(f"buffer {prefix} is empty; regenerate it with: {how_to_create}")
        ptr, chunk = (int(v) for v in _integers(f"{prefix}_replay_info.npy", how_to_create, (2,),
                                                 "two integers (the write position, the rows per frame chunk)"))
        if chunk < 1:
            raise UserError(f"buffer file {prefix}_replay_info.npy gives {chunk} rows per frame chunk; expected at "
                            f"least 1; regenerate it with: {how_to_create}")
        state_shape = (self.history, *self.frames.shape[1:])
        # With mmap the frames tensor is replaced below; on the CPU torch.empty costs no memory until written.
        self.__init__(state_shape, n if mmap else max(n, capacity or 0), self.batch_size, self.device, self.rng,
                      "cpu" if mmap else self.frames.device)
        chunks = []
        self.reward[:n] = reward.reshape(n, 1)
        action = _load(f"{prefix}_action.npy", how_to_create)
        _check_actions(f"{prefix}_action.npy", action, how_to_create)
        self.action[:n] = action.reshape(n, 1)
        self.not_done[:n] = _load(f"{prefix}_not_done.npy", how_to_create).reshape(n, 1)
        self.first_timestep[:n] = _load(f"{prefix}_first_timestep.npy", how_to_create).reshape(n)
        if os.path.exists(f"{prefix}_valid.npy"):  # only converted datasets have it
            self.valid = np.zeros(self.capacity, np.uint8)
            self.valid[:n] = _load(f"{prefix}_valid.npy", how_to_create).reshape(n)
        start = 0
        while start < n:
            end = min(start + chunk, n + 1)
            path = f"{prefix}_state_{end}.npy"
            if not os.path.exists(path):
                found = sorted(glob.glob(f"{glob.escape(prefix)}_state_*.npy"))
                raise UserError(f"buffer {prefix} is incomplete: {path} is missing (found {len(found)} frame chunks)")
            shape, dtype = _guarded(lambda: npy_header(path), path, how_to_create)
            if shape[0] != end - start:
                raise UserError(f"buffer {prefix} is inconsistent: {path} holds {shape[0]} frames, expected "
                                f"{end - start}; regenerate it with: {how_to_create}")
            if shape[1:] != tuple(self.frames.shape[1:]) or dtype != np.uint8:
                raise UserError(f"buffer {prefix} holds frames of shape {shape[1:]} ({dtype}), expected "
                                f"{tuple(self.frames.shape[1:])} (uint8): was it generated with another --frame_size?")
            take = min(end, n) - start
            if mmap:
                chunks.append(_load(path, how_to_create, mmap_mode="r"))
            elif self.frames.device.type == "cpu":
                _guarded(lambda: read_npy_into(path, self.frames[start:start + take].numpy()), path, how_to_create)
            else:
                self.frames[start:start + take] = torch.from_numpy(_load(path, how_to_create)[:take])
            start = end
        if mmap:
            self.frames = MappedFrames(chunks, chunk, n)
        self.size = n
        self.ptr = ptr % self.capacity
        self.wrapped = ptr < n  # a buffer that never wrapped was saved with ptr == size
