"""What a buffer hands a learner: a `Batch` of tensors on the training device and, for frame stacks,
the `StackWindow` the stacks were cut from."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


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
