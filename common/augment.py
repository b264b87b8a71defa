"""Data augmentation for SQV (DESIGN §4), batched over the first axis with no per-sample loop."""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np
import torch

from common.buffers import Batch, StackWindow, apply_masks


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
    words, so the networks' float copy needs no transpose. Measured here (medians, interleaved A/B,
    channels-last against plain crops, before the packing was made in place, 0.25 ms cheaper): the
    crops alone of a batch of 32 (s and s' twice each) 0.89 against 0.49 ms, the crops and the float
    copy 1.5 against 2.5 ms, a whole SQV update 30.9 against 32.5 ms. On a GPU the crops stay plain:
    there the transposing copy is one kernel, and the packing's dozen small kernels would lengthen an
    update bound by kernel launches (on H100s, two runs on different machines: sample + augment
    1.24 ms with this packing, 0.66 ms with an earlier one of fewer kernels).
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
        s_prime, s = words[:, 0], words[:, 1]  # in place: fewer temporaries (0.50 against 0.75 ms here)
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

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return shift(images, self.offsets(images.shape[0], images.device), self.pad)

    def __repr__(self) -> str:
        return f"RandomShift(pad={self.pad})"


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


def make_augmentation(kind: str, cfg, buffer, device):
    """SQV's augmentation for an env kind: random shift for images, for state vectors Gaussian
    noise with std ``aug_noise`` × each dimension's std over the buffer's states."""
    from common.envs import VECTOR

    if kind != VECTOR:
        return RandomShift(cfg.aug_pad)
    std = torch.as_tensor(buffer.state[:buffer.size].std(axis=0), dtype=torch.float32, device=device)
    return GaussianNoise(cfg.aug_noise * std)
