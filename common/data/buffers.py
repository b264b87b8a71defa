"""Replay buffers in the reference file formats (docs/DESIGN.md §5, §6), and the public face of the buffer layer.

`ReplayBuffer` (here) stores whole (s, a, s', r, not_done) rows: vector states, MinAtar images and
continuous actions. `FrameStackBuffer` (`common.data.frame_stack`) stores one uint8 frame per
transition and rebuilds the Atari frame stacks at sample time. Both sample uniformly with a
`numpy.random.Generator`, gather with batched indexing (no Python loop over samples) and return a
`Batch` (`common.data.batch`) of tensors on the training device. Datasets and manifests use only their
public methods: `allocate`, `replace`, `columns`, `load`, `save`, `saved` and `files`.
"""
from __future__ import annotations

import numpy as np
import torch

from common.data import stored
from common.data.batch import Batch, StackWindow, apply_masks
from common.data.frame_stack import FrameStackBuffer, stack_mask
from common.errors import UserError
from common.io import atomic_save_npy

__all__ = ["Batch", "StackWindow", "apply_masks", "FrameStackBuffer", "stack_mask", "ReplayBuffer", "COLUMNS"]

COLUMNS = ("state", "action", "next_state", "reward", "not_done")  # one file each, besides ``_ptr.npy``


class ReplayBuffer:
    """A circular buffer of whole transitions (vector states, MinAtar images, continuous actions).

    Files: ``{prefix}_{state,action,next_state,reward,not_done}.npy`` and ``{prefix}_ptr.npy``,
    as written by the reference code, whose buffers load here unchanged.
    """

    def __init__(self, state_shape, capacity: int, batch_size: int, device, rng: np.random.Generator,
                 state_dtype=np.float32, action_shape=(1,), action_dtype=np.int64):
        self.state_shape, self.state_dtype = tuple(int(v) for v in state_shape), np.dtype(state_dtype)
        self.action_shape, self.action_dtype = tuple(int(v) for v in action_shape), np.dtype(action_dtype)
        self.batch_size, self.device, self.rng = int(batch_size), device, rng
        self.allocate(capacity)

    def allocate(self, capacity: int) -> None:
        """Empty the buffer into a fresh store of ``capacity`` rows (np.empty costs no memory until written)."""
        self.capacity = int(capacity)
        self.state = np.empty((self.capacity, *self.state_shape), dtype=self.state_dtype)
        self.next_state = np.empty_like(self.state)
        self.action = np.empty((self.capacity, *self.action_shape), dtype=self.action_dtype)
        self.reward = np.empty((self.capacity, 1), dtype=np.float32)
        self.not_done = np.empty((self.capacity, 1), dtype=np.float32)
        self.ptr = 0
        self.size = 0

    @property
    def discrete(self) -> bool:
        """Are the actions indices (integers) rather than vectors?"""
        return bool(np.issubdtype(self.action_dtype, np.integer))

    def add(self, state, action, next_state, reward, not_done, first_timestep=False) -> None:
        i = self.ptr
        self.state[i], self.action[i], self.next_state[i] = state, action, next_state
        self.reward[i], self.not_done[i] = reward, not_done
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def replace(self, state, action, next_state, reward, not_done) -> None:
        """Hold exactly these n rows (capacity n, write position 0), cast to the buffer's dtypes; the
        actions are reshaped to the action shape, rewards and not_done to (n, 1)."""
        n = len(state)
        self.allocate(n)
        self.state[:], self.next_state[:] = state, next_state
        self.action[:] = np.reshape(action, (n, *self.action_shape))
        self.reward[:], self.not_done[:] = np.reshape(reward, (n, 1)), np.reshape(not_done, (n, 1))
        self.size = n

    def columns(self) -> tuple[np.ndarray, ...]:
        """(s, a, s', r, not_done) of the stored rows, in storage order (views, not copies)."""
        return tuple(getattr(self, name)[:self.size] for name in COLUMNS)

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
        return Batch(*(self._to_device(getattr(self, name)[ind]) for name in COLUMNS))

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array).to(self.device, non_blocking=True)
        return tensor if tensor.dtype == torch.int64 else tensor.float()

    def saved(self) -> stored.Saved:
        return stored.Saved(str(self.state.dtype), int(self.size), int(self.ptr))

    @staticmethod
    def files(prefix: str) -> list[str]:
        """The files of a buffer saved at ``prefix``, all of which loading reads."""
        return [f"{prefix}_{name}.npy" for name in (*COLUMNS, "ptr")]

    def save(self, prefix: str) -> list[str]:
        """Write the reference files (each atomically); returns the paths written."""
        paths = [atomic_save_npy(f"{prefix}_{name}.npy", column) for name, column in zip(COLUMNS, self.columns())]
        paths.append(atomic_save_npy(f"{prefix}_ptr.npy", np.array(self.ptr)))
        return paths

    def load(self, prefix: str, how_to_create: str = "python main.py --generate_buffer", mmap: bool = False,
             capacity: int | None = None) -> None:
        """Load a buffer in the reference format into a capacity of at least the stored size (or
        ``capacity``); with ``mmap`` the states stay in the files, mapped read-only (several runs
        share one copy in the page cache)."""
        stored.require(prefix, [*COLUMNS, "ptr"], how_to_create)
        arrays = {name: stored.load(f"{prefix}_{name}.npy", how_to_create,
                                    mmap_mode="r" if mmap and "state" in name else None) for name in COLUMNS}
        n = arrays["reward"].shape[0]
        stored.check_rows(prefix, n, how_to_create)
        ptr = int(stored.integers(f"{prefix}_ptr.npy", how_to_create, (), "one integer (the write position)"))
        if self.discrete:
            stored.check_actions(f"{prefix}_action.npy", arrays["action"], how_to_create)
        self._check_shapes(prefix, arrays, n)
        size = n if mmap else max(n, capacity or 0)
        if mmap or size > self.capacity:
            self.allocate(size)
        for name, array in arrays.items():
            shape = (n, *getattr(self, name).shape[1:])
            if mmap and "state" in name:
                setattr(self, name, array.reshape(shape))
            else:
                getattr(self, name)[:n] = array.reshape(shape)
        self.size = n
        self.ptr = ptr % self.capacity

    def _check_shapes(self, prefix: str, arrays: dict[str, np.ndarray], n: int) -> None:
        """Refuse stored states or actions of another size than this env's, or columns of another length."""
        for name, want in (("state", self.state_shape), ("action", self.action_shape)):
            found = arrays[name].shape[1:] if arrays[name].ndim > 1 else (1,)
            if arrays[name].shape[0] != n:
                raise UserError(f"buffer {prefix} holds {arrays[name].shape[0]} {name} rows but {n} rewards: its "
                                "files come from different buffers or were cut short; regenerate it")
            if int(np.prod(found)) != int(np.prod(want)):
                raise UserError(f"buffer {prefix} holds {name}s of shape {arrays[name].shape[1:]}, but this env's "
                                f"{name}s have shape {want}: was it generated for another env?")
