"""Continuous BCQ: the target's λ mix and max over repeats, the VAE loss, perturbation bounds, SQV swap."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from common.data.buffers import Batch
from common.training.config import defaults
from continuous_BCQ.bcq import BCQ, TARGET_SAMPLES
from continuous_BCQ.networks import VAE, Perturbation
from continuous_BCQ.sqv import SQV


def config(**overrides):
    return SimpleNamespace(**{**defaults("continuous"), **overrides})


class FixedCritic(nn.Module):
    """Q1, Q2 read off the action: Q1 = 10·a₀, Q2 = a₀ + c (c per call site)."""

    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def forward(self, state, action):
        return 10 * action[:, :1], action[:, :1] + self.offset


class ListDecoder:
    """vae.decode stand-in returning, for each repeated state, actions 0, 1, ..., 9 (× 0.1)."""

    def decode(self, state, z=None):
        n = state.shape[0]
        return (torch.arange(n) % TARGET_SAMPLES).float().mul(0.1).view(n, 1)


def test_bcq_target_mixes_min_and_max_then_takes_max_over_the_ten_samples():
    agent = BCQ(1, 1, np.array([1.0]), config(lmbda=0.75, discount=0.9), "cpu")
    agent.vae = ListDecoder()
    agent.actor_target = lambda s, a: a  # no perturbation
    agent.critic_target = FixedCritic(offset=0.5)
    next_state = torch.zeros(2, 1)
    y = agent.target(next_state, torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [0.0]]))
    # sample j has action a = j/10: Q1 = 10a, Q2 = a + 0.5; soft clipped = .75·min + .25·max
    mixed = [0.75 * min(10 * a, a + 0.5) + 0.25 * max(10 * a, a + 0.5) for a in np.arange(10) / 10]
    assert y[0, 0].item() == pytest.approx(1 + 0.9 * max(mixed))
    assert y[1, 0].item() == pytest.approx(2.0)  # terminal: no bootstrap


def test_vae_loss_equals_hand_computation():
    torch.manual_seed(0)
    agent = BCQ(3, 2, np.array([1.0, 1.0]), config(), "cpu")
    state, action = torch.randn(5, 3), torch.rand(5, 2) * 2 - 1
    torch.manual_seed(1)
    loss = agent.vae_loss(state, action)
    torch.manual_seed(1)
    mean, log_std = agent.vae.encoder(torch.cat([state, action], 1)).chunk(2, dim=1)
    std = log_std.clamp(-4, 15).exp()
    z = mean + std * torch.randn_like(std)
    recon = torch.tanh(agent.vae.decoder(torch.cat([state, z], 1)))
    kl = (-0.5 * (1 + 2 * torch.log(std) - mean ** 2 - std ** 2)).mean()
    assert loss.item() == pytest.approx(((recon - action) ** 2).mean().item() + 0.5 * kl.item(), rel=1e-5)


def test_vae_log_std_is_clamped_and_sampling_clips_the_latent():
    vae = VAE(2, 1, 2, torch.tensor([2.0]))
    with torch.no_grad():
        vae.encoder[-1].bias.copy_(torch.tensor([0.0, 0.0, 100.0, -100.0]))
        vae.encoder[-1].weight.zero_()
    _, _, std = vae(torch.zeros(4, 2), torch.zeros(4, 1))
    torch.testing.assert_close(std, torch.tensor([[math.exp(15), math.exp(-4)]]).expand(4, 2))
    seen = []

    class Spy(nn.Module):
        def forward(self, sz):
            seen.append(sz[:, 2:])
            return 100 * sz[:, 2:3]

    vae.decoder = Spy()
    out = vae.decode(torch.zeros(10_000, 2))
    assert seen[0].abs().max() <= 0.5 and (seen[0].abs() == 0.5).any()  # z ~ N(0,1) clipped to ±0.5
    assert out.abs().max() <= 2.0 and out.abs().max() > 1.99  # max_action·tanh


def test_perturbation_stays_within_phi_and_bounds():
    torch.manual_seed(0)
    max_action = torch.tensor([2.0, 0.5])
    actor = Perturbation(3, 2, max_action, phi=0.05)
    with torch.no_grad():
        actor.net[-1].bias.fill_(50.0)  # saturate tanh: the largest possible move
    action = torch.tensor([[0.0, 0.0], [1.99, 0.49], [-2.0, -0.5]])
    out = actor(torch.zeros(3, 3), action)
    torch.testing.assert_close(out[0], torch.tensor([0.1, 0.025]))  # φ·max_action
    torch.testing.assert_close(out[1], max_action)                   # clamped to the bounds
    assert ((out - action).abs() <= 0.05 * max_action + 1e-6).all()


def test_acting_picks_the_highest_q1_of_100_samples():
    torch.manual_seed(0)
    agent = BCQ(2, 1, np.array([1.0]), config(), "cpu")
    agent.vae.decode = lambda s, z=None: torch.linspace(-1, 1, s.shape[0]).view(-1, 1)
    agent.actor = lambda s, a: a
    agent.critic.q1 = lambda s, a: -(a - 0.3).abs()
    assert agent.act(np.zeros(2, dtype=np.float32))[0] == pytest.approx(0.3, abs=0.011)


def test_continuous_sqv_critic_regresses_each_view_on_the_other_views_target():
    torch.manual_seed(0)
    agent = SQV(1, 1, np.array([1.0]), config(discount=0.5), "cpu")

    def augment(x):  # deterministic views of the one batch [s; s; s'; s']: +1, +2 for s; +3, +4 for s'
        return torch.cat([block + k for k, block in enumerate(x.chunk(4), start=1)])

    agent.augment = augment
    agent.target = lambda ns, r, m: r + m * 0.5 * ns       # y_k = r + 0.5·(s' + shift_k)
    agent.critic = lambda s, a: (s + a, 2 * s)              # Q1 = s + a, Q2 = 2s
    batch = Batch(torch.tensor([[0.0], [1.0]]), torch.tensor([[0.5], [-0.5]]), torch.tensor([[2.0], [3.0]]),
                  torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0], [1.0]]))
    loss = agent.critic_loss(batch)
    expected = 0.0
    for b in range(2):
        s, a, ns, r = batch.state[b, 0].item(), batch.action[b, 0].item(), batch.next_state[b, 0].item(), batch.reward[b, 0].item()
        y1, y2 = r + 0.5 * (ns + 3), r + 0.5 * (ns + 4)
        for s_view, y_other in ((s + 1, y2), (s + 2, y1)):
            expected += ((s_view + a - y_other) ** 2 + (2 * s_view - y_other) ** 2) / 2
    assert loss.item() == pytest.approx(expected)


def test_asymmetric_action_bounds_are_refused():
    import gymnasium as gym

    from common.envs.make import EnvInfo
    from common.errors import UserError
    from continuous_BCQ import family

    info = EnvInfo(None, "vector", (3,), gym.spaces.Box(low=np.array([0.0, -1.0]), high=np.array([1.0, 1.0])))
    with pytest.raises(UserError, match="symmetric bounds"):
        family.check_env(info, SimpleNamespace(env="Fake-v0"))
    family.check_env(EnvInfo(None, "vector", (3,), gym.spaces.Box(-2.0, 2.0, (2,))), SimpleNamespace(env="Ok-v0"))


def test_reference_continuous_buffer_loads(tmp_path):
    """Files as the reference continuous ReplayBuffer.save writes them: float64, (N, action_dim)."""
    from continuous_BCQ import family

    rng = np.random.default_rng(0)
    prefix = str(tmp_path / "Robust_Hopper-v5_0")
    n = 50
    for name, shape in (("state", (n, 11)), ("next_state", (n, 11)), ("action", (n, 3)), ("reward", (n, 1)),
                        ("not_done", (n, 1))):
        np.save(f"{prefix}_{name}.npy", rng.uniform(-1, 1, shape))
    np.save(f"{prefix}_ptr.npy", n)
    info = SimpleNamespace(state_shape=(11,), action_space=SimpleNamespace(shape=(3,)))
    buffer = family.make_buffer(info, SimpleNamespace(batch_size=8), "cpu", rng, 1)
    buffer.load(prefix)
    batch = buffer.sample()
    assert buffer.size == n and batch.action.shape == (8, 3) and batch.action.dtype == torch.float32
    assert batch.state.dtype == torch.float32 and batch.not_done.shape == (8, 1)
