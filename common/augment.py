"""Data augmentation for SQV (DESIGN §4), batched over the first axis with no per-sample loop."""
from __future__ import annotations

import torch


def replicate_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims of (B, C, H, W) by ``pad`` with edge replication (any dtype, any device)."""
    b, c, h, w = images.shape
    rows = torch.cat([images[:, :, :1].expand(b, c, pad, w), images, images[:, :, -1:].expand(b, c, pad, w)], 2)
    return torch.cat([rows[..., :1].expand(b, c, h + 2 * pad, pad), rows,
                      rows[..., -1:].expand(b, c, h + 2 * pad, pad)], 3)


def shift(images: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop each replicate-padded image at its own offset.

    ``images``: (B, C, H, W) of any dtype (uint8 pixels are 4× cheaper to move than floats);
    ``offsets``: (B, 2) integer (row, column) offsets in [0, 2·pad]. Pads every side by ``pad``
    with edge replication and crops the original size at ``offsets``. All channels (the stacked
    frames) of a sample move together. No loop over samples: every (C, H, W) window of the padded
    batch is a row of one overlapping strided view, and the crops are one ``index_select`` of it.
    """
    b, c, h, w = images.shape
    padded = replicate_pad(images.contiguous(), pad)
    hp, wp = h + 2 * pad, w + 2 * pad
    last_start = padded.numel() - ((c - 1) * hp * wp + (h - 1) * wp + w)
    windows = padded.as_strided((last_start + 1, c, h, w), (1, hp * wp, wp, 1))
    offsets = offsets.to(images.device)
    starts = torch.arange(b, device=images.device) * (c * hp * wp) + offsets[:, 0] * wp + offsets[:, 1]
    return windows.index_select(0, starts)


class RandomShift:
    """Random shift (DrQ): replicate-pad ``pad`` pixels, crop back at a uniform integer offset."""

    def __init__(self, pad: int):
        self.pad = int(pad)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        offsets = torch.randint(0, 2 * self.pad + 1, (images.shape[0], 2), device=images.device)
        return shift(images, offsets, self.pad)

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
