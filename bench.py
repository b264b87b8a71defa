"""Throughput: training updates, buffer sampling, buffer generation and evaluation.

    python bench.py                  # CPU, 5 repeats per measurement (under 10 minutes on 2 cores)
    python bench.py --quick          # fewer calls and repeats (under 2 minutes)
    python bench.py --baseline       # also time the original algorithm (see below)
    python bench.py --device cuda    # the learners and the buffer on the GPU

Prints one JSON object per measurement (median, min and max over repeats) and then a table. The
data are random but shaped like the real thing: Atari (4×84×84 uint8 frames in a 1M-capacity
frame-stacked buffer holding 100k frames, 6 actions, batch 32), CartPole (4-d states, 2 actions,
batch 64) and Hopper-shaped continuous control (11-d states, 3-d actions, batch 100); buffer
generation and evaluation run the real PongNoFrameskip-v4 with a (random-weight) DQN acting.

``--baseline`` adds the original code's algorithm, re-implemented here and only here: NumPy
stacking of the frames on the host, a per-sample random crop in a Python loop over a replicate-
padded float batch, separate forward passes per view (six for SQV), plain Adam, one env stepped at
a time with a batch-1 network call per step. Its rows are marked ``baseline``.

Like main.py, the benchmark first tells glibc's malloc to keep freed memory (see
`common.training.runtime.keep_freed_memory`), for the baseline rows too; ``--default_malloc`` leaves the
allocator alone, as the original code runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import statistics
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.learning.augment import RandomShift, augmented_views, make_augmentation
from common.data.buffers import FrameStackBuffer, ReplayBuffer
from common.envs.make import ATARI, IMAGE, VECTOR, make_env
from common.training.config import defaults
from common.training.runtime import evaluate, get_device, keep_freed_memory
from common.training.stages import interact
from common.envs.vector import make_vec_env
from continuous_BCQ.bcq import BCQ as ContinuousBCQ
from continuous_BCQ.sqv import SQV as ContinuousSQV
from discrete_SQV.bcq import BCQ
from discrete_SQV.dqn import DQN
from discrete_SQV.networks import image_inputs
from discrete_SQV.sqv import SQV

PONG = "PongNoFrameskip-v4"


# --- data ---------------------------------------------------------------------------------------
def atari_buffer(device, rng, frames=100_000, capacity=1_000_000, storage_device="cpu"):
    buffer = FrameStackBuffer((4, 84, 84), capacity, 32, device, rng, storage_device=storage_device)
    for start in range(0, frames, 10_000):
        buffer.frames[start:start + 10_000] = torch.randint(0, 256, (10_000, 84, 84), dtype=torch.uint8)
    buffer.action[:frames, 0] = rng.integers(0, 6, frames)
    buffer.not_done[:frames] = 1.0
    buffer.first_timestep[:frames:1000] = 1
    buffer.size, buffer.ptr = frames, frames
    return buffer


def vector_buffer(device, rng, state_dim, action_shape, action_dtype, batch_size, n=50_000):
    shape = state_dim if isinstance(state_dim, tuple) else (state_dim,)
    buffer = ReplayBuffer(shape, n, batch_size, device, rng, action_shape=action_shape,
                          action_dtype=action_dtype)
    buffer.state[:] = rng.normal(size=buffer.state.shape)
    buffer.next_state[:] = rng.normal(size=buffer.state.shape)
    buffer.action[:] = (rng.integers(0, 2, buffer.action.shape) if action_dtype == np.int64
                        else rng.uniform(-1, 1, buffer.action.shape))
    buffer.reward[:], buffer.not_done[:] = 1.0, 1.0
    buffer.size = n
    return buffer


# --- the original algorithm (baseline only) -----------------------------------------------------
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


def host_buffer(buffer: FrameStackBuffer, device) -> FrameStackBuffer:
    """``buffer`` itself if its frames are on the host, else a buffer of the same shape and episode layout
    in host memory: the reference keeps its buffer in NumPy arrays whatever the training device."""
    return buffer if buffer.frames.device.type == "cpu" else atari_buffer(device, np.random.default_rng(0))


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


# --- measuring ----------------------------------------------------------------------------------
def timed(step, calls: int, repeats: int, device, warmup: int | None = None) -> list[float]:
    """Calls per second of ``step`` over ``repeats`` runs of ``calls`` calls (after a warm-up)."""
    for _ in range(max(2, calls // 10) if warmup is None else warmup):
        step()
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(calls / (time.perf_counter() - start))
    return rates


class Report:
    def __init__(self, device):
        self.device, self.rows = device, []

    def add(self, measure: str, case: str, values: list[float], per_repeat: int, unit: str) -> None:
        row = {"measure": measure, "case": case, "device": str(self.device), "unit": unit,
               "median": statistics.median(values), "min": min(values), "max": max(values),
               "repeats": len(values), "calls_per_repeat": per_repeat}
        print(json.dumps(row), flush=True)
        self.rows.append(row)

    def table(self) -> None:
        print(f"\n{'measure':<18}{'case':<44}{'median':>10}{'min':>10}{'max':>10}  unit"
              f"   ({self.device}, {torch.get_num_threads()} threads)")
        for r in self.rows:
            print(f"{r['measure']:<18}{r['case']:<44}{r['median']:>10.2f}{r['min']:>10.2f}{r['max']:>10.2f}  {r['unit']}")


def atari_updates(report, args, device, scale):
    atari = atari_buffer(device, np.random.default_rng(0), storage_device=get_device(args.buffer_device))
    cfg = SimpleNamespace(**defaults("atari"))
    cases = [(f"{cls.__name__} atari 4x84x84 b32", lambda c=cls: c(ATARI, (4, 84, 84), 6, cfg, device),
              atari, ATARI, cfg, 8 * scale) for cls in (DQN, BCQ, SQV)]
    if args.baseline:
        host = host_buffer(atari, device)
        cases += [(f"baseline {name} atari 4x84x84 b32", lambda v=views: OriginalLearner(device, v), host, None,
                   None, 8 * scale) for name, views in (("BCQ", 1), ("SQV", 2))]
    time_updates(report, args, device, cases)


def vector_updates(report, args, device, scale):
    rng = np.random.default_rng(0)
    cartpole = vector_buffer(device, rng, 4, (1,), np.int64, 64)
    cfg_v = SimpleNamespace(**defaults("regular", VECTOR))
    cases = [(f"{cls.__name__} cartpole 4 b64", lambda c=cls: c(VECTOR, (4,), 2, cfg_v, device),
              cartpole, VECTOR, cfg_v, 100 * scale) for cls in (DQN, BCQ, SQV)]
    minatar = vector_buffer(device, rng, (4, 10, 10), (1,), np.int64, 32)
    cfg_m = SimpleNamespace(**defaults("regular", IMAGE))
    cases += [(f"{cls.__name__} minatar 4x10x10 b32", lambda c=cls: c(IMAGE, (4, 10, 10), 2, cfg_m, device),
               minatar, IMAGE, cfg_m, 40 * scale) for cls in (BCQ, SQV)]
    hopper = vector_buffer(device, rng, 11, (3,), np.float32, 100)
    cfg_c = SimpleNamespace(**defaults("continuous"))
    cases += [(f"continuous {cls.__name__} 11/3 b100", lambda c=cls: c(11, 3, np.ones(3, np.float32), cfg_c, device),
               hopper, VECTOR, cfg_c, 15 * scale) for cls in (ContinuousBCQ, ContinuousSQV)]
    time_updates(report, args, device, cases)


def time_updates(report, args, device, cases):
    """Each case's updates/s, in each ``--precision`` one after the other (the baseline: float32 only)."""
    for name, make, buffer, kind, cfg_case, calls in cases:
        for precision in args.precision if not name.startswith("baseline") else ["fp32"]:
            agent = make()
            agent.precision = precision
            if hasattr(agent, "augment"):
                agent.augment = make_augmentation(kind, cfg_case, buffer, device)
            label = name if precision == "fp32" else f"{name} bf16"
            report.add("updates_per_s", label, timed(lambda: agent.train(buffer), calls, args.repeats, device), calls,
                       "updates/s")


def bench_sampling(report, args, device, scale):
    atari = atari_buffer(device, np.random.default_rng(0), storage_device=get_device(args.buffer_device))
    shift = RandomShift(4)

    def sample_augment():  # what SQV does per update: s and s' of a batch, two views each (uint8: the
        return augmented_views(shift, atari.sample())  # networks take them as they are)

    def sample_augment_float():  # ... and the float32 channels-last copy the networks start with (the
        return [image_inputs(views) for views in sample_augment()]  # baseline's sampling returns floats)

    cases = [("atari sample b32", atari.sample), ("atari sample+augment b32 (2 views)", sample_augment),
             ("atari sample+augment+to network input b32", sample_augment_float)]
    if args.baseline:
        np_rng, host = np.random.default_rng(0), host_buffer(atari, device)

        def original_sample_augment():
            state, _, next_state, _, _ = original_sample(host, device, np_rng)
            return [original_crop(x, 4, np_rng) for x in (state, state, next_state, next_state)]

        cases += [("baseline atari sample b32", lambda: original_sample(host, device, np_rng)),
                  ("baseline atari sample+augment b32 (2 views)", original_sample_augment)]
    for name, step in cases:
        rates = timed(step, 40 * scale, args.repeats, device)
        report.add("ms_per_batch", name, [1000 / r for r in rates], 40 * scale, "ms/batch")


def bench_generation(report, args, device, scale):
    """Buffer generation on Pong with the DQN acting: the original one-env loop against ours."""
    cfg = SimpleNamespace(**defaults("atari"), seed=0)
    dqn = DQN(ATARI, (4, 84, 84), 6, cfg, device)
    steps = 250 * scale
    rng = np.random.default_rng(0)

    def one_env_loop():
        env = make_env(PONG, cfg).env
        state = env.reset(seed=0)[0]
        start = time.perf_counter()  # from the first action on, as for the vectorized runs
        for _ in range(steps):
            action = int(rng.integers(6)) if rng.random() < cfg.eval_eps else dqn.act(state)
            state, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                state = env.reset()[0]
        return steps / (time.perf_counter() - start)

    def vectorized(n):
        """Steps per second from the first action on (env creation and the seeded first reset, a ROM
        reload per env, are a one-off cost of a generation run)."""
        buffer = FrameStackBuffer((4, 84, 84), steps, 32, device, rng)
        vec = make_vec_env(PONG, cfg, n)
        low_noise = np.zeros(n, bool)
        bar = SimpleNamespace(notes={}, update=lambda *a: None, set_postfix=lambda *a, **k: None)
        start = []

        def choose(states, t):
            start.append(start[0] if start else time.perf_counter())
            return dqn.buffer_actions(states, rng, low_noise, vec.action_space)

        interact(vec, cfg, buffer, steps, choose, lambda t: None, lambda i: None, bar)
        vec.close()
        return steps / (time.perf_counter() - start[0])

    report.add("env_steps_per_s", f"{PONG} one env, batch-1 acting", [one_env_loop() for _ in range(args.repeats)],
               steps, "steps/s")
    for n in args.num_envs:
        report.add("env_steps_per_s", f"{PONG} generation, {n} envs", [vectorized(n) for _ in range(args.repeats)],
                   steps, "steps/s")


def bench_evaluation(report, args, device, scale):
    cfg = SimpleNamespace(**defaults("atari"), seed=0)
    dqn = DQN(ATARI, (4, 84, 84), 6, cfg, device)
    episodes = 8 if args.quick else 16
    for n in (1, 8):
        def run():
            start = time.perf_counter()
            evaluate(dqn.act_batch, lambda k: make_vec_env(PONG, cfg, k), 0, episodes, cfg.eval_eps, device, n)
            return episodes / (time.perf_counter() - start) * 60
        report.add("episodes_per_min", f"{PONG} evaluation, {n} env{'s' if n > 1 else ''}",
                   [run() for _ in range(max(1, args.repeats // 2))], episodes, "episodes/min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=str, default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats: under 2 minutes")
    parser.add_argument("--baseline", action="store_true", help="also time the original algorithm")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32"],
                        help="time our learners' updates in these precisions, side by side (see main.py --precision)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (default 5, quick 3)")
    parser.add_argument("--num_envs", type=int, nargs="+", default=[32, 64], help="env counts to time generation with")
    parser.add_argument("--buffer_device", type=str, default="cpu", help="where the Atari buffer's frames live")
    parser.add_argument("--only", nargs="+", choices=list(GROUPS), default=DEFAULT_GROUPS,
                        help="measure only these groups (each runs in a process of its own; dqn_replay, which "
                             "writes ~7 KB per transition to disk, runs only when named)")
    parser.add_argument("--replay_size", type=int, default=1_000_000, help="dqn_replay: transitions in the checkpoint")
    parser.add_argument("--tmp_dir", type=str, default=None, help="dqn_replay: where to write it (default: the system's)")
    parser.add_argument("--default_malloc", action="store_true",
                        help="leave glibc's malloc settings alone (main.py keeps freed memory; this shows what that buys)")
    args = parser.parse_args()
    args.repeats = args.repeats or (3 if args.quick else 5)
    device = get_device(args.device)
    report = Report(device)
    if len(args.only) == 1:
        run_group(args.only[0], report, args, device)
    else:  # one fresh process per group: no group inherits another's heap or caches
        for group in args.only:
            report.rows += run_child(group)
    report.table()


def bench_dqn_replay(report, args, device, scale):
    """Converting a synthetic DQN Replay checkpoint (``--replay_size`` transitions, Pong-like frames:
    a few hundred distinct images, so gzip compresses it as it does real frames): seconds, and the
    converting process's peak RSS. Writes about 7 KB per transition to a temporary folder."""
    import gzip
    import tempfile

    n = args.replay_size
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as directory:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (256, 84, 84), dtype=np.uint8)
        terminal = (rng.random(n) < 1 / 800).astype(np.uint8)
        small = {"action": rng.integers(0, 6, n).astype(np.int32), "reward": rng.choice([-1.0, 0.0, 1.0], n).astype(np.float32),
                 "terminal": terminal}
        for name, array in small.items():
            with gzip.open(os.path.join(directory, f"$store$_{name}_ckpt.0.gz"), "wb", compresslevel=1) as f:
                np.save(f, array)
        for name, array in (("add_count", np.array(n + n // 3)), ("invalid_range", np.arange(5) + n // 3 - 1)):
            with gzip.open(os.path.join(directory, f"{name}_ckpt.0.gz"), "wb") as f:
                np.save(f, array)
        with gzip.open(os.path.join(directory, "$store$_observation_ckpt.0.gz"), "wb", compresslevel=1) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, 84, 84)})
            for start in range(0, n, 10_000):
                f.write(images[rng.integers(0, 256, min(10_000, n - start))].tobytes())
        code = ("import resource, time, os, sys; sys.path.insert(0, os.getcwd())\n"
                "from common.data.datasets import convert_dqn_replay\n"
                f"t = time.time(); convert_dqn_replay({directory!r}, [0], os.path.join({directory!r}, 'out'), (84, 84), 4)\n"
                "print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        child = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=True,
                               cwd=os.path.dirname(os.path.abspath(__file__)))
        seconds, peak_kib = child.stdout.split()[-2:]
    report.add("dqn_replay", f"convert a {n}-transition checkpoint, seconds", [float(seconds)], 1, "s")
    report.add("dqn_replay", "convert, peak RSS of the converting process", [int(peak_kib) / 2**20], 1, "GiB")


GROUPS = {"atari_updates": atari_updates, "vector_updates": vector_updates, "sampling": bench_sampling,
          "generation": bench_generation, "evaluation": bench_evaluation, "dqn_replay": bench_dqn_replay}
DEFAULT_GROUPS = ["atari_updates", "vector_updates", "sampling", "generation", "evaluation"]


def run_group(group: str, report, args, device) -> None:
    if not args.default_malloc:
        keep_freed_memory()  # as main.py does
    torch.manual_seed(0)
    GROUPS[group](report, args, device, 1 if args.quick else 4)


def run_child(group: str) -> list[dict]:
    argv = [a for a in sys.argv[1:]]
    if "--only" in argv:  # drop the groups given to the parent
        i = argv.index("--only")
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        del argv[i:j]
    child = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--only", group],
                           stdout=subprocess.PIPE, text=True, check=True)
    rows = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main()
