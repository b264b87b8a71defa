"""Data augmentation for SQV (DESIGN §4), batched over the first axis with no per-sample loop."""
from __future__ import annotations

import torch


def shift(images: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop each replicate-padded image at its own offset.

    ``images``: (B, C, H, W) of any dtype (uint8 pixels are 4× cheaper to move than floats);
    ``offsets``: (B, 2) integer (row, column) offsets in [0, 2·pad]. Equivalent to padding every
    side by ``pad`` with edge replication and cropping the original size at ``offsets``; here the
    padding is never built: a replicated border pixel is a clamped source index, and the whole
    batch is one gather. All channels (the stacked frames) of a sample move together.
    """
    b, c, h, w = images.shape
    shift_rc = offsets.to(images.device) - pad
    rows = (torch.arange(h, device=images.device) + shift_rc[:, :1]).clamp_(0, h - 1)  # (B, H)
    cols = (torch.arange(w, device=images.device) + shift_rc[:, 1:]).clamp_(0, w - 1)  # (B, W)
    source = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return images.reshape(b, c, h * w).gather(2, source).view(b, c, h, w)


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
