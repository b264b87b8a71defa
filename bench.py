"""Throughput: training updates, buffer sampling, buffer generation and evaluation.

    python bench.py                  # CPU, 5 repeats per measurement (under 10 minutes on 2 cores)
    python bench.py --quick          # fewer calls and repeats (under 2 minutes)
    python bench.py --baseline       # also time the original algorithm (see below)
    python bench.py --device cuda    # the learners and the buffer on the GPU
    python bench.py --only atari_updates vector_updates --precision fp32 bf16 --baseline   # issue 23's rows
    python bench.py --only profile_sqv --precision bf16   # where a bf16 SQV update's time goes

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

import torch

from common.errors import Parser, UserError
from common.reporting.benchmarks import DEFAULT_GROUPS, GROUPS, Report
from common.training.runtime import get_device, keep_freed_memory


def make_parser() -> argparse.ArgumentParser:
    parser = Parser("bench.py", description=__doc__)
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
                             "writes ~7 KB per transition to disk, and profile_sqv, which prints the profiler's "
                             "operator table of an Atari SQV update per --precision, run only when named)")
    parser.add_argument("--profile_rows", type=int, default=15, help="profile_sqv: operators listed per table")
    parser.add_argument("--replay_size", type=int, default=1_000_000, help="dqn_replay: transitions in the checkpoint")
    parser.add_argument("--tmp_dir", type=str, default=None, help="dqn_replay: where to write it (default: the system's)")
    parser.add_argument("--default_malloc", action="store_true",
                        help="leave glibc's malloc settings alone (main.py keeps freed memory; this shows what that buys)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # a group's process: rows only
    return parser


def checked_args(parser: Parser) -> tuple[argparse.Namespace, torch.device]:
    """The arguments and the device, or a one-line usage error (exit code 2)."""
    args = parser.parse_args()
    repeats = [] if args.repeats is None else [args.repeats]
    for flag, values in (("--repeats", repeats), ("--num_envs", args.num_envs),
                         ("--profile_rows", [args.profile_rows]), ("--replay_size", [args.replay_size])):
        if values and min(values) < 1:
            parser.error(f"{flag} must be at least 1, got {min(values)}")
    args.repeats = args.repeats or (3 if args.quick else 5)
    try:
        device = get_device(args.device)
        args.buffer_device = get_device(args.buffer_device, "--buffer_device")
    except UserError as err:
        parser.error(str(err))
    return args, device


def main() -> None:
    args, device = checked_args(make_parser())
    report = Report(device)
    if len(args.only) == 1:
        run_group(args.only[0], report, args, device)
    else:  # one fresh process per group: no group inherits another's heap or caches
        for group in args.only:
            report.rows += run_child(group)
    if not args.child:
        report.table()


def run_group(group: str, report: Report, args: argparse.Namespace, device: torch.device) -> None:
    """Measure one group in this process, with the allocator and seed main.py runs with."""
    if not args.default_malloc:
        keep_freed_memory()  # as main.py does
    torch.manual_seed(0)
    GROUPS[group](report, args, device, 1 if args.quick else 4)


def run_child(group: str) -> list[dict]:
    """Measure one group in a fresh process (this command's arguments, ``--only group``); its rows."""
    argv = [a for a in sys.argv[1:]]
    if "--only" in argv:  # drop the groups given to the parent
        i = argv.index("--only")
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        del argv[i:j]
    child = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--only", group, "--child"],
                           stdout=subprocess.PIPE, text=True, check=True)
    print(child.stdout, end="", flush=True)  # its JSON rows (and profile_sqv's tables)
    return [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]


if __name__ == "__main__":
    main()
