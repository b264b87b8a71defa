"""Throughput of the training step: updates per second of every learner on synthetic data.

    python bench.py                  # CPU, default repeats
    python bench.py --quick          # fewer updates per repeat
    python bench.py --device cuda

Prints one JSON object per measurement (median and spread over repeats) and a table. The data are
random but shaped like the real thing: Atari (4×84×84 uint8 frames in a frame-stacked buffer,
6 actions, batch 32; plus real PongNoFrameskip-v4 env steps with the DQN choosing each action), CartPole (4-d states, 2 actions, batch 64) and Hopper-shaped continuous
control (11-d states, 3-d actions, batch 100).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from types import SimpleNamespace

import numpy as np
import torch

from common.augment import make_augmentation
from common.buffers import FrameStackBuffer, ReplayBuffer
from common.envs import ATARI, VECTOR, make_env
from common.params import defaults
from common.runtime import get_device
from continuous_BCQ.bcq import BCQ as ContinuousBCQ
from continuous_BCQ.sqv import SQV as ContinuousSQV
from discrete_SQV.bcq import BCQ
from discrete_SQV.dqn import DQN
from discrete_SQV.sqv import SQV


def atari_buffer(device, rng, frames=20_000):
    buffer = FrameStackBuffer((4, 84, 84), frames, 32, device, rng)
    images = rng.integers(0, 256, (frames, 84, 84), dtype=np.uint8)
    buffer.frames[:] = torch.from_numpy(images)
    buffer.action[:, 0] = rng.integers(0, 6, frames)
    buffer.not_done[:] = 1.0
    buffer.first_timestep[::1000] = 1
    buffer.size, buffer.ptr = frames, 0
    return buffer


def vector_buffer(device, rng, state_dim, action_shape, action_dtype, batch_size, n=50_000):
    buffer = ReplayBuffer((state_dim,), n, batch_size, device, rng, action_shape=action_shape,
                          action_dtype=action_dtype)
    buffer.state[:] = rng.normal(size=buffer.state.shape)
    buffer.next_state[:] = rng.normal(size=buffer.state.shape)
    buffer.action[:] = (rng.integers(0, 2, buffer.action.shape) if action_dtype == np.int64
                        else rng.uniform(-1, 1, buffer.action.shape))
    buffer.reward[:], buffer.not_done[:] = 1.0, 1.0
    buffer.size = n
    return buffer


def timed(step, updates: int, repeats: int, device) -> list[float]:
    """Updates per second of ``step`` over ``repeats`` runs of ``updates`` calls (after a warm-up)."""
    for _ in range(max(3, updates // 10)):
        step()
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(updates):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(updates / (time.perf_counter() - start))
    return rates


def report(rows: list, measure: str, case: str, rates: list[float], per_repeat: int, device) -> None:
    row = {"measure": measure, "case": case, "device": str(device), "median": statistics.median(rates),
           "min": min(rates), "max": max(rates), "repeats": len(rates), "calls_per_repeat": per_repeat}
    print(json.dumps(row), flush=True)
    rows.append(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=str, default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="fewer updates per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement")
    args = parser.parse_args()
    device = get_device(args.device)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    scale = 1 if args.quick else 4
    cases = []
    atari = atari_buffer(device, rng)
    cfg = SimpleNamespace(**defaults("atari"))
    for cls in (DQN, BCQ, SQV):
        cases.append((f"{cls.__name__} atari 4x84x84 b32", lambda c=cls: c(ATARI, (4, 84, 84), 6, cfg, device),
                      atari, ATARI, cfg, 10 * scale))
    cartpole = vector_buffer(device, rng, 4, (1,), np.int64, 64)
    cfg_v = SimpleNamespace(**defaults("regular", VECTOR))
    for cls in (DQN, BCQ, SQV):
        cases.append((f"{cls.__name__} cartpole 4 b64", lambda c=cls: c(VECTOR, (4,), 2, cfg_v, device),
                      cartpole, VECTOR, cfg_v, 200 * scale))
    hopper = vector_buffer(device, rng, 11, (3,), np.float32, 100)
    cfg_c = SimpleNamespace(**defaults("continuous"))
    for cls in (ContinuousBCQ, ContinuousSQV):
        cases.append((f"continuous {cls.__name__} 11/3 b100",
                      lambda c=cls: c(11, 3, np.ones(3, np.float32), cfg_c, device), hopper, VECTOR, cfg_c, 20 * scale))

    rows = []
    for name, make, buffer, kind, cfg_case, updates in cases:
        agent = make()
        if hasattr(agent, "augment"):
            agent.augment = make_augmentation(kind, cfg_case, buffer, device)
        report(rows, "updates_per_s", name, timed(lambda: agent.train(buffer), updates, args.repeats, device),
               updates, device)
    report(rows, "batches_per_s", "atari buffer sample b32", timed(atari.sample, 50 * scale, args.repeats, device),
           50 * scale, device)
    pong = make_env("PongNoFrameskip-v4", cfg)
    dqn = DQN(ATARI, (4, 84, 84), pong.action_space.n, cfg, device)
    state = {"s": pong.env.reset(seed=0)[0]}

    def env_step():
        next_state, _, terminated, truncated, _ = pong.env.step(dqn.act(state["s"]))
        state["s"] = pong.env.reset()[0] if terminated or truncated else next_state

    report(rows, "env_steps_per_s", "Pong env steps, DQN acting", timed(env_step, 100 * scale, args.repeats, device),
           100 * scale, device)
    print(f"\n{'case':<36}{'median/s':>10}{'min':>10}{'max':>10}   ({device}, {torch.get_num_threads()} threads)")
    for row in rows:
        print(f"{row['case']:<36}{row['median']:>10.1f}{row['min']:>10.1f}{row['max']:>10.1f}")


if __name__ == "__main__":
    main()
