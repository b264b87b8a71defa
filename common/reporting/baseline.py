"""The original code's discrete BCQ and SQV update, re-implemented here and only here for bench.py's
``--baseline`` rows: NumPy stacking of the frames on the host, a per-sample random crop in a Python loop
over a replicate-padded float batch, separate forward passes per view (six for SQV), plain Adam."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.data.buffers import FrameStackBuffer


class OriginalConvQ(nn.Module):
    """The reference Atari network as written there: contiguous float input, returns (q, log π, i)."""

    def __init__(self, frames, num_actions):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(frames, 32, 8, 4), nn.Conv2d(32, 64, 4, 2), nn.Conv2d(64, 64, 3, 1)
        self.q1, self.q2 = nn.Linear(3136, 512), nn.Linear(512, num_actions)
        self.i1, self.i2 = nn.Linear(3136, 512), nn.Linear(512, num_actions)

    def forward(self, state):
        c = F.relu(self.c3(F.relu(self.c2(F.relu(self.c1(state))))))
        c = c.reshape(-1, 3136)
        i = self.i2(F.relu(self.i1(c)))
        return self.q2(F.relu(self.q1(c))), F.log_softmax(i, dim=1), i


def original_sample(buffer: FrameStackBuffer, device, np_rng):
    """The reference AtariBuffer.sample: host-side NumPy stacking, float tensors moved to the device."""
    frames = buffer.frames.numpy()
    ind = np_rng.integers(0, buffer.size - 1, size=buffer.batch_size)
    state = np.zeros((buffer.batch_size, buffer.history, *frames.shape[1:]), dtype=np.uint8)
    next_state = np.array(state)
    state_not_done, next_not_done = 1.0, 1.0
    for i in range(buffer.history):
        j = ind - i
        k = (ind - i + 1).clip(min=0)
        state_not_done *= (j + 1).clip(min=0, max=1).reshape(-1, 1, 1)
        j = j.clip(min=0)
        state[:, i] = frames[j] * state_not_done
        next_state[:, i] = frames[k] * next_not_done
        next_not_done *= state_not_done
        state_not_done *= (1.0 - buffer.first_timestep[j]).reshape(-1, 1, 1)
    as_float = lambda x: torch.ByteTensor(x).to(device).float()
    return (as_float(state), torch.LongTensor(buffer.action[ind]).to(device), as_float(next_state),
            torch.FloatTensor(buffer.reward[ind]).to(device), torch.FloatTensor(buffer.not_done[ind]).to(device))


def original_crop(images: torch.Tensor, pad: int, np_rng) -> torch.Tensor:
    """The reference random shift: replicate-pad the float batch, crop each sample in a Python loop."""
    n, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    out = torch.empty_like(images)
    for i in range(n):
        top, left = np_rng.integers(0, 2 * pad + 1, 2)
        out[i] = padded[i, :, top:top + h, left:left + w]
    return out


class OriginalLearner:
    """The reference discrete BCQ (``views=1``) and SQV (``views=2``) update: one forward pass per network
    per view for the targets and one per view for the loss."""

    def __init__(self, device, views: int, threshold=0.3, discount=0.99, tau=0.005):
        self.Q = OriginalConvQ(4, 6).to(device)
        self.Q_target = OriginalConvQ(4, 6).to(device).requires_grad_(False)
        self.Q_target.load_state_dict(self.Q.state_dict())
        self.optimizer = torch.optim.Adam(self.Q.parameters(), lr=6.25e-5, eps=1.5e-4)
        self.device, self.views, self.threshold, self.discount, self.tau = device, views, threshold, discount, tau
        self.np_rng = np.random.default_rng(0)

    def target(self, next_state, reward, done):
        q, imt, _ = self.Q(next_state)
        imt = imt.exp()
        imt = (imt / imt.max(1, keepdim=True)[0] > self.threshold).float()
        next_action = (imt * q + (1 - imt) * -1e8).argmax(1, keepdim=True)
        q, _, _ = self.Q_target(next_state)
        return reward + done * self.discount * q.gather(1, next_action).reshape(-1, 1)

    def train(self, buffer):
        state, action, next_state, reward, done = original_sample(buffer, self.device, self.np_rng)
        if self.views == 1:
            states = [state]
            with torch.no_grad():
                targets = [self.target(next_state, reward, done)]
        else:
            states = [original_crop(state, 4, self.np_rng) for _ in range(2)]
            next_states = [original_crop(next_state, 4, self.np_rng) for _ in range(2)]
            with torch.no_grad():
                targets = [self.target(ns, reward, done) for ns in next_states][::-1]  # swapped
        loss = 0.0
        for s, y in zip(states, targets):
            current_q, imt, i = self.Q(s)
            loss = loss + F.smooth_l1_loss(current_q.gather(1, action), y) + F.nll_loss(imt, action.reshape(-1)) \
                + 1e-2 * i.pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        for param, target_param in zip(self.Q.parameters(), self.Q_target.parameters()):
            target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)
