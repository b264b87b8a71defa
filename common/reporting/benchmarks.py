"""The benchmark's measurements (see bench.py), in groups: learner updates on Atari-, CartPole-, MinAtar-
and Hopper-shaped random data, buffer sampling and augmentation, buffer generation and evaluation on
Pong, and converting a DQN Replay checkpoint; with ``--baseline``, the original algorithm's rows."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

from common.data.buffers import FrameStackBuffer, ReplayBuffer
from common.envs.make import ATARI, IMAGE, VECTOR, make_env
from common.envs.vector import make_vec_env
from common.learning.algorithms import BY_NAME
from common.learning.augment import RandomShift, augmented_views, make_augmentation
from common.reporting.baseline import OriginalLearner, original_crop, original_sample
from common.training.config import defaults
from common.training.rollout import Rollout, interact
from common.training.runtime import evaluate
from continuous_BCQ.bcq import BCQ as ContinuousBCQ
from continuous_BCQ.sqv import SQV as ContinuousSQV
from discrete_SQV.bcq import BCQ
from discrete_SQV.dqn import DQN
from discrete_SQV.networks import image_inputs
from discrete_SQV.sqv import SQV

PONG = "PongNoFrameskip-v4"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # where bench.py is


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


def host_buffer(buffer: FrameStackBuffer, device) -> FrameStackBuffer:
    """``buffer`` itself if its frames are on the host, else a buffer of the same shape and episode layout
    in host memory: the reference keeps its buffer in NumPy arrays whatever the training device."""
    return buffer if buffer.frames.device.type == "cpu" else atari_buffer(device, np.random.default_rng(0))


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
    """The measurements: each printed as one JSON line when it is made, then all as a table."""

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
    """Updates/s of DQN, BCQ and SQV (and the original BCQ and SQV with ``--baseline``) on Atari frames."""
    atari = atari_buffer(device, np.random.default_rng(0), storage_device=args.buffer_device)
    cfg = SimpleNamespace(**defaults("atari"))
    cases = [(f"{cls.__name__} atari 4x84x84 b32", lambda c=cls: c(ATARI, (4, 84, 84), 6, cfg, device),
              atari, ATARI, cfg, 8 * scale) for cls in (DQN, BCQ, SQV)]
    if args.baseline:
        host = host_buffer(atari, device)
        views = {BY_NAME["bcq"].label: 1, BY_NAME["sqv"].label: 2}  # per sampled transition
        cases += [(f"baseline {name} atari 4x84x84 b32", lambda v=n: OriginalLearner(device, v), host, None, None,
                   8 * scale) for name, n in views.items()]
    time_updates(report, args, device, cases)


def vector_updates(report, args, device, scale):
    """Updates/s on CartPole-, MinAtar- and Hopper-shaped batches."""
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
    """Milliseconds per Atari batch: sampled, augmented (two views), as network input; the original's."""
    atari = atari_buffer(device, np.random.default_rng(0), storage_device=args.buffer_device)
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

        interact(vec, Rollout(cfg, buffer, bar, choose), steps)
        vec.close()
        return steps / (time.perf_counter() - start[0])

    report.add("env_steps_per_s", f"{PONG} one env, batch-1 acting", [one_env_loop() for _ in range(args.repeats)],
               steps, "steps/s")
    for n in args.num_envs:
        report.add("env_steps_per_s", f"{PONG} generation, {n} envs", [vectorized(n) for _ in range(args.repeats)],
                   steps, "steps/s")


def bench_evaluation(report, args, device, scale):
    """Pong evaluation episodes per minute with 1 and 8 envs."""
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


def profile_sqv(report, args, device, scale):
    """The operators of an Atari SQV update in each ``--precision`` (torch.profiler, 4 × scale updates
    after a warm-up): a table per precision, sorted by self time, and the updates/s it ran at."""
    from torch.profiler import ProfilerActivity, profile

    atari = atari_buffer(device, np.random.default_rng(0), storage_device=args.buffer_device)
    cfg = SimpleNamespace(**defaults("atari"))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for precision in args.precision:
        agent = SQV(ATARI, (4, 84, 84), 6, cfg, device)
        agent.precision = precision
        agent.augment = make_augmentation(ATARI, cfg, atari, device)
        timed(lambda: agent.train(atari), 1, 1, device, warmup=5)
        with profile(activities=activities) as prof:
            rates = timed(lambda: agent.train(atari), 4 * scale, 1, device, warmup=0)
        report.add("updates_per_s", f"SQV atari 4x84x84 b32 {precision}, profiled", rates, 4 * scale, "updates/s")
        print(f"\nSQV Atari update, {precision}: {4 * scale} updates", flush=True)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows), flush=True)


def write_replay_checkpoint(directory: str, n: int) -> None:
    """A synthetic DQN Replay checkpoint of ``n`` transitions in ``directory``: Pong-like frames, a few
    hundred distinct images, so gzip compresses it as it does real frames (about 7 KB per transition)."""
    import gzip

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


def bench_dqn_replay(report, args, device, scale):
    """Converting a synthetic DQN Replay checkpoint (``--replay_size`` transitions, `write_replay_checkpoint`
    in a temporary folder): seconds, and the converting process's peak RSS."""
    import tempfile

    n = args.replay_size
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as directory:
        write_replay_checkpoint(directory, n)
        code = ("import resource, time, os, sys; sys.path.insert(0, os.getcwd())\n"
                "from common.data.datasets import convert_dqn_replay\n"
                f"t = time.time(); convert_dqn_replay({directory!r}, [0], os.path.join({directory!r}, 'out'), (84, 84), 4)\n"
                "print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        child = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT)
        seconds, peak_kib = child.stdout.split()[-2:]
    report.add("dqn_replay", f"convert a {n}-transition checkpoint, seconds", [float(seconds)], 1, "s")
    report.add("dqn_replay", "convert, peak RSS of the converting process", [int(peak_kib) / 2**20], 1, "GiB")


GROUPS = {"atari_updates": atari_updates, "vector_updates": vector_updates, "sampling": bench_sampling,
          "generation": bench_generation, "evaluation": bench_evaluation, "dqn_replay": bench_dqn_replay,
          "profile_sqv": profile_sqv}
DEFAULT_GROUPS = ["atari_updates", "vector_updates", "sampling", "generation", "evaluation"]
