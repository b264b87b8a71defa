"""``--precision bf16``: every learner's update keeps float32 master weights and optimizer state, its
networks' outputs stay float32, and its loss matches the float32 loss on the same weights and batch
within bfloat16's tolerance."""
import copy
import os
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import main  # noqa: E402
from common.envs.make import make_env  # noqa: E402

pytestmark = pytest.mark.skipif(not (torch.backends.mkldnn.is_available()
                                     and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
                                reason="this CPU has no bfloat16 arithmetic (AVX512-BF16/AMX)")

CASES = [("CartPole-v1", "behavioral"), ("CartPole-v1", "BCQ"), ("MinAtar/Breakout-v1", "BCQ"),
         ("MinAtar/Breakout-v1", "SQV"), ("MinAtar/Breakout-v1", "SQIL"), ("Pendulum-v1", "behavioral"),
         ("Pendulum-v1", "BCQ"), ("Pendulum-v1", "SQV")]


def learner(env, which, precision):
    cfg, family = main.resolve(main.parse_args(["--env", env, "--batch_size", "32", "--precision", precision]), env)
    info = make_env(env, cfg)
    rng = np.random.default_rng(0)
    buffer = family.make_buffer(info, cfg, torch.device("cpu"), rng, 200)
    for _ in range(200):
        buffer.add(info.env.observation_space.sample(), info.action_space.sample(), info.env.observation_space.sample(), float(rng.normal()), 1.0)
    if which == "behavioral":
        agent = family.behavioral_agent(info, cfg, torch.device("cpu"))
    elif which == "SQIL":
        agent = family.sqil_agent(info, cfg, torch.device("cpu"))
    else:
        agent = family.offline_agent(which, info, cfg, torch.device("cpu"), buffer)
    agent.precision = precision
    return agent, buffer


def loss_of(agent, batch):
    torch.manual_seed(0)  # the same VAE samples and augmentation draws in both precisions
    with agent.autocast():
        if hasattr(agent, "loss"):
            return float(agent.loss(batch)[0].detach())
        if hasattr(agent, "critic_loss"):  # continuous BCQ/SQV
            return float(agent.critic_loss(batch).detach())
        return float(torch.nn.functional.mse_loss(agent.critic(batch.state, batch.action)[0], batch.reward).detach())  # DDPG's critic


@pytest.mark.parametrize("env, which", CASES, ids=[f"{e}-{w}" for e, w in CASES])
def test_bf16_update_keeps_float32_masters_and_matches_the_fp32_loss(env, which):
    agent, buffer = learner(env, which, "bf16")
    reference = copy.deepcopy(agent)
    reference.precision = "fp32"
    batch = buffer.sample()
    fp32, bf16 = loss_of(reference, batch), loss_of(agent, batch)
    assert bf16 == pytest.approx(fp32, rel=3e-2, abs=1e-3)
    assert fp32 != bf16  # the forward passes did run in bfloat16
    agent.train(buffer)
    modules = [v for v in vars(agent).values() if isinstance(v, torch.nn.Module)]
    optimizers = [v for v in vars(agent).values() if isinstance(v, torch.optim.Optimizer)]
    assert all(p.dtype == torch.float32 for m in modules for p in m.parameters())
    assert all(t.dtype == torch.float32 for o in optimizers for s in o.state.values() for k, t in s.items()
               if torch.is_tensor(t) and k != "step")
    assert all(torch.isfinite(v).all() and v.dtype == torch.float32 for v in agent.last_loss.values())
    with agent.autocast():
        outputs = agent.Q(batch.state) if hasattr(agent, "Q") else agent.critic(batch.state, batch.action)
    assert all(o.dtype == torch.float32 for o in outputs if o is not None)  # output layers in float32


def test_fp32_is_untouched_by_the_autocast_region():
    agent, buffer = learner("CartPole-v1", "BCQ", "fp32")
    batch = buffer.sample()
    with torch.no_grad():
        plain = agent.loss(batch)[0]
        with agent.autocast():
            inside = agent.loss(batch)[0]
    assert torch.equal(plain, inside)


ONEDNN_PROBE = """
import torch
from common.learning.nets import Linear
layer, x = Linear(3136, 512), torch.randn(64, 3136, requires_grad=True)
with torch.autocast("cpu", dtype=torch.bfloat16):
    y = layer(x)
assert y.dtype == torch.bfloat16
y.float().sum().backward()
"""


def test_linear_layers_under_autocast_run_on_onednn_bf16_kernels():
    """Under autocast `common.learning.nets.Linear` leaves its own float32 oneDNN path for `F.linear`, which must
    then run the forward product and both gradient products on oneDNN's bfloat16 kernels, not a slow fallback
    (oneDNN's log of the primitives it ran, ONEDNN_VERBOSE=1, in a fresh process)."""
    import subprocess

    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    run = subprocess.run([sys.executable, "-c", ONEDNN_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    executed = [line.split(",") for line in run.stdout.splitlines() if line.startswith("onednn_verbose")
                and ",primitive,exec," in line]
    products = [fields for fields in executed if fields[5] in ("matmul", "inner_product")]
    shapes = {fields[-2] for fields in products if "bf16" in fields[6]}  # the kernel's name, e.g. brg_matmul:avx512_core_bf16
    assert {"64x3136:3136x512", "64x512:512x3136", "512x64:64x3136"} <= shapes, products
