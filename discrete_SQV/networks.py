"""The one Q-network definition shared by DQN, BCQ and SQV.

A trunk chosen by the env kind feeds a Q head and, for BCQ/SQV, an imitation head:
- atari: conv 32×8×8/4 → 64×4×4/2 → 64×3×3/1 (ReLU) → 3136 features; heads 3136→512→A.
- image (MinAtar, Young & Tian 2019): conv 16×3×3/1 (ReLU) → 16·8·8 features; heads →128→A.
- vector: no shared trunk; each head is its own 256-256 MLP (Fujimoto et al. 2019).
"""
from __future__ import annotations

import torch
from torch import nn
from utils import ATARI, IMAGE, mlp



def trunk_for(kind: str, state_shape: tuple) -> tuple[nn.Module, tuple[int, ...]]:
    """The shared feature extractor for an env kind and the hidden widths of the heads on top."""
    if kind == ATARI:
        trunk = nn.Sequential(nn.Conv2d(state_shape[0], 32, 8, stride=4), nn.ReLU(),
                              nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                              nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        return trunk, (512,)
    if kind == IMAGE:
        return nn.Sequential(nn.Conv2d(state_shape[0], 16, 3, stride=1), nn.ReLU(), nn.Flatten()), (128,)
    return nn.Flatten(), (256, 256)


def image_inputs(images: torch.Tensor) -> torch.Tensor:
    """uint8 or float images as float32 channels-last, the layout oneDNN's and cuDNN's convolutions
    run fastest on. Float first, then the transpose if one is needed (0.7 ms for 64 Atari stacks here
    against 1.1 in one copy); the Atari views that `common.learning.augment.shift_window` cuts on the CPU
    need none."""
    return images.float().contiguous(memory_format=torch.channels_last)


class DiscreteNet(nn.Module):
    """``forward(s) -> (q, i)``: Q-values (B, A) and imitation logits (B, A), or None without that head.

    Image inputs (uint8 or float) become float32 channels-last (`inputs`) and are multiplied by
    ``pixel_scale`` first (1.0, raw pixel values, as the reference code; 1/255 scales Atari pixels to [0, 1]).
    """

    def __init__(self, kind: str, state_shape: tuple, num_actions: int, imitation: bool = False,
                 pixel_scale: float = 1.0):
        super().__init__()
        self.trunk, hidden = trunk_for(kind, state_shape)
        self.scale = float(pixel_scale) if kind in (ATARI, IMAGE) else 1.0
        with torch.no_grad():
            features = self.trunk(torch.zeros(1, *state_shape)).shape[1]
        self.q_head = mlp(features, hidden, num_actions)
        self.imitation_head = mlp(features, hidden, num_actions) if imitation else None
        self.images = kind in (ATARI, IMAGE)
        if self.images:  # oneDNN/cuDNN convolutions run faster on channels-last tensors
            self.trunk.to(memory_format=torch.channels_last)

    def inputs(self, state: torch.Tensor) -> torch.Tensor:
        """A batch in the form the trunk takes (`image_inputs` for images; a no-op on a batch already
        in it: convert once a batch that goes through two networks)."""
        return image_inputs(state) if self.images else state

    def forward(self, state: torch.Tensor, imitation: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``imitation=False`` skips the imitation head (a target network needs Q-values only)."""
        state = self.inputs(state)
        features = self.trunk(state * self.scale if self.scale != 1.0 else state)
        logits = self.imitation_head(features) if imitation and self.imitation_head is not None else None
        return self.q_head(features), logits
