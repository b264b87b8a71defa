"""Data augmentation for SQV (docs/DESIGN.md §4), batched over the first axis with no per-sample loop."""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from common.data.buffers import Batch, StackWindow, apply_masks
from common.errors import UserError


def replicate_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims of (B, C, H, W) by ``pad`` with edge replication (any dtype, any device)."""
    b, c, h, w = images.shape
    rows = torch.cat([images[:, :, :1].expand(b, c, pad, w), images, images[:, :, -1:].expand(b, c, pad, w)], 2)
    return torch.cat([rows[..., :1].expand(b, c, h + 2 * pad, pad), rows,
                      rows[..., -1:].expand(b, c, h + 2 * pad, pad)], 3)


def _crops(padded: torch.Tensor, depth: int, h: int, w: int, starts: torch.Tensor) -> torch.Tensor:
    """(N, depth, h, w) windows of a padded (B, C, hp, wp) batch, the n-th beginning at flat element
    ``starts[n]``. No loop over samples: every window is a row of one overlapping strided view of
    the padded batch, and the crops are one ``index_select`` of it."""
    _, _, hp, wp = padded.shape
    last_start = padded.numel() - ((depth - 1) * hp * wp + (h - 1) * wp + w)
    windows = padded.as_strided((last_start + 1, depth, h, w), (1, hp * wp, wp, 1))
    return windows.index_select(0, starts)


def shift(images: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop each replicate-padded image at its own offset.

    ``images``: (B, C, H, W) of any dtype (uint8 pixels are 4× cheaper to move than floats);
    ``offsets``: (B, 2) integer (row, column) offsets in [0, 2·pad]. Pads every side by ``pad``
    with edge replication and crops the original size at ``offsets``. All channels (the stacked
    frames) of a sample move together.
    """
    b, c, h, w = images.shape
    padded = replicate_pad(images.contiguous(), pad)
    hp, wp = h + 2 * pad, w + 2 * pad
    offsets = offsets.to(images.device)
    starts = torch.arange(b, device=images.device) * (c * hp * wp) + offsets[:, 0] * wp + offsets[:, 1]
    return _crops(padded, c, h, w, starts)


def shift_window(window: StackWindow, copies: int, offsets: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``copies`` shifted views of each s stack and of each s' stack of a `StackWindow`, cut straight
    from the window padded once: the same crops as ``shift`` on ``copies`` copies of s and of s' (each
    stack's own offset, ``offsets`` of shape (2·copies·B, 2) ordered as s views then s' views) but
    with H + 1 frames padded per sample instead of 2·copies·H. Masks are applied after the crop,
    which is the same since a mask zeroes whole frames. Returns (s views, s' views), each (copies·B, H, h, w).

    On the CPU, Atari's stacks of 4 uint8 frames come out channels-last, the layout the networks
    take: each pixel's 4 frames are packed into one 32-bit word (frame k in byte k) and the crops move
    words, so the networks' float copy needs no transpose. On a GPU the crops stay plain (one
    transposing kernel beats the packing's dozen small ones). Measurements: README, "Speed notes".
    """
    frames, masks = window
    b, depth, h, w = frames.shape
    history, hp, wp = depth - 1, h + 2 * pad, w + 2 * pad
    device = frames.device
    is_s = torch.arange(2 * copies * b, device=device) < copies * b  # s: frames 1..H; s': 0..H-1
    sample = torch.arange(b, device=device).repeat(2 * copies)
    offsets = offsets.to(device)
    offset = offsets[:, 0] * wp + offsets[:, 1]
    if history == 4 and frames.dtype == torch.uint8 and device.type == "cpu" and sys.byteorder == "little":
        f = frames.to(torch.int32)
        f[:, 1:4] <<= torch.tensor([8, 16, 24], dtype=torch.int32, device=device).view(1, 3, 1, 1)
        words = torch.empty((b, 2, h, w), dtype=torch.int32, device=device)
        s_prime, s = words[:, 0], words[:, 1]  # in place: fewer temporaries
        torch.bitwise_or(f[:, 0], f[:, 1], out=s_prime).bitwise_or_(f[:, 2]).bitwise_or_(f[:, 3])  # frames 0-3
        torch.bitwise_right_shift(s_prime, 8, out=s).bitwise_and_(0xFFFFFF).bitwise_or_(f[:, 4] << 24)  # 1-4
        views = _crops(replicate_pad(words, pad), 1, h, w, (sample * 2 + is_s.long()) * (hp * wp) + offset)
        views = views.view(torch.uint8).view(-1, h, w, history).permute(0, 3, 1, 2)
    else:
        starts = (sample * depth + is_s.long()) * (hp * wp) + offset
        views = _crops(replicate_pad(frames, pad), history, h, w, starts)
    views = apply_masks(views, np.concatenate([masks[0]] * copies + [masks[1]] * copies))
    return views.chunk(2)


def augmented_views(augment: Callable[[torch.Tensor], torch.Tensor], batch: Batch,
                    copies: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``copies`` independently augmented views of s and of s' in one call: (aug(s) stacked ``copies``
    times along the batch axis, the same for s'). A random shift of Atari stacks cuts them straight
    from the batch's frame window (`shift_window`); anything else augments [s; …; s'; …] at once."""
    if isinstance(augment, RandomShift) and batch.window is not None:
        n = 2 * copies * batch.state.shape[0]
        return shift_window(batch.window, copies, augment.offsets(n, batch.state.device), augment.pad)
    views = augment(torch.cat([batch.state] * copies + [batch.next_state] * copies))
    return views.chunk(2)


class RandomShift:
    """Random shift (DrQ): replicate-pad ``pad`` pixels, crop back at a uniform integer offset."""

    def __init__(self, pad: int):
        self.pad = int(pad)

    def offsets(self, n: int, device) -> torch.Tensor:
        return torch.randint(0, 2 * self.pad + 1, (n, 2), device=device)

    def sample(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the shifted images, their (B, 2) offsets)."""
        offsets = self.offsets(images.shape[0], images.device)
        return shift(images, offsets, self.pad), offsets

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.sample(images)[0]

    def __repr__(self) -> str:
        return f"RandomShift(pad={self.pad})"


def object_counts(images: torch.Tensor) -> torch.Tensor:
    """(B, C) number of nonzero pixels of each channel: MinAtar's objects, one channel per type."""
    return (images != 0).sum((2, 3))


def _window_sums(x: torch.Tensor, h: int, w: int, pad: int) -> torch.Tensor:
    """(B, C, K) sums of the h × w windows of a padded (B, C, h + 2·pad, w + 2·pad) batch at each of
    the K = (2·pad + 1)² offsets, row-major (k = row · (2·pad + 1) + column), from one integral image."""
    s = F.pad(x.cumsum(2).cumsum(3), (1, 0, 1, 0))
    o = torch.arange(2 * pad + 1, device=x.device)
    oy, ox = o.repeat_interleave(2 * pad + 1), o.repeat(2 * pad + 1)
    return s[..., oy + h, ox + w] - s[..., oy, ox + w] - s[..., oy + h, ox] + s[..., oy, ox]


def translation_offsets(images: torch.Tensor, pad: int) -> torch.Tensor:
    """(B, K) bool: which of the K = (2·pad + 1)² offsets of `shift` (row-major) only translate the
    content of a (B, C, H, W) batch: no nonzero pixel leaves the frame and none is replicated from
    the border, so every channel keeps its pixels and their count. The centre (identity) always does."""
    h, w = images.shape[-2:]
    nonzero = (images != 0).to(torch.int32)
    total = nonzero.sum((2, 3), keepdim=True)
    kept = _window_sums(F.pad(nonzero, (pad,) * 4), h, w, pad)  # what stays in the frame
    cropped = _window_sums(replicate_pad(nonzero, pad), h, w, pad)  # ... plus what the border replicates
    return ((kept == total[..., 0]) & (cropped == total[..., 0])).all(1)


class ObjectPreservingShift:
    """Random shift restricted to the offsets that move every object and create none: per sample, a
    uniform offset among those `translation_offsets` allows (the identity at least). On MinAtar's
    binary grids the replicate-padded shift duplicates an object on the border it moves away from
    and drops one on the border it moves towards; this one keeps the set of objects, at the price of
    leaving unshifted the states with objects on the borders (see augmentation_check.py)."""

    def __init__(self, pad: int):
        self.pad = int(pad)

    def offsets(self, images: torch.Tensor) -> torch.Tensor:
        allowed = translation_offsets(images, self.pad)
        k = torch.rand(allowed.shape, device=images.device).masked_fill_(~allowed, -1.0).argmax(1)
        return torch.stack([k // (2 * self.pad + 1), k % (2 * self.pad + 1)], 1)

    def sample(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the shifted images, their (B, 2) offsets)."""
        offsets = self.offsets(images)
        return shift(images, offsets, self.pad), offsets

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.sample(images)[0]

    def __repr__(self) -> str:
        return f"ObjectPreservingShift(pad={self.pad})"


class GaussianNoise:
    """Additive zero-mean Gaussian noise on state vectors (S4RL, Sinha et al. 2021).

    ``std`` is a scalar or a per-dimension tensor (e.g. a fraction of the buffer's state std).
    """

    def __init__(self, std):
        self.std = std

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        return states + torch.randn_like(states) * self.std

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std})"


SHIFTS = ("replicate", "preserve_objects")


def make_augmentation(kind: str, cfg, buffer, device):
    """SQV's augmentation for an env kind: random shift for images (MinAtar: ``aug_shift`` picks
    `RandomShift` or `ObjectPreservingShift`; Atari: always `RandomShift`), for state vectors
    Gaussian noise with std ``aug_noise`` × each dimension's std over the buffer's states."""
    from common.envs.make import IMAGE, VECTOR

    if kind != VECTOR:
        choice = cfg.aug_shift or SHIFTS[0]  # Atari has no aug_shift
        if choice not in SHIFTS:
            raise UserError(f"--aug_shift {choice}: expected one of {', '.join(SHIFTS)}")
        if choice == "preserve_objects" and kind != IMAGE:
            raise UserError("--aug_shift preserve_objects applies to MinAtar's object channels, not Atari frames")
        return ObjectPreservingShift(cfg.aug_pad) if choice == "preserve_objects" else RandomShift(cfg.aug_pad)
    std = torch.as_tensor(buffer.state[:buffer.size].std(axis=0), dtype=torch.float32, device=device)
    return GaussianNoise(cfg.aug_noise * std)
