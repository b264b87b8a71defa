"""Sweeps: a grid of envs × seeds × algorithms run as main.py stages, on Ray.

    python sweep.py configs/minatar_study.yaml                 # a local Ray (workers = cores / cpus per run)
    python sweep.py CONFIG.yaml --ray_address auto             # an existing Ray cluster
    python sweep.py CONFIG.yaml --dry_run                      # print the runs and their order
    python sweep.py CONFIG.yaml --no_ray                       # one run after another, without Ray

The config (YAML) names ``out_dir``, ``envs``, ``seeds``, ``algos`` (the names in
``common/learning/algorithms.py``, listed below), the
flags of every run (``flags``), per stage (``stages: {behavioral, buffer, offline}``) and per env
(``env_flags``), ``resources`` per run (``num_cpus``, ``num_gpus``), and optionally ``last_evals`` (the report's
final score of a run is the mean of its last that many evaluations; default 1). Each env × seed trains one
behavioral agent and generates one buffer, which every algorithm of that env × seed then shares
(Ray starts a run once the runs it needs have succeeded). A run that succeeded leaves
``{out_dir}/sweep/{run}.done`` with its arguments and is skipped next time, unless its arguments
changed since (then it and every run that needs it run again, from scratch); offline and behavioral runs are started
with ``--resume``, so an interrupted sweep continues from the runs' checkpoints. Each run's
output goes to ``{out_dir}/sweep/{run}.log``. At the end the results table and plots are made
(``plot.py``) from ``{out_dir}/results``.
"""
from __future__ import annotations

import argparse
import os
import sys

from common.errors import Parser, UserError
from common.learning.algorithms import BY_NAME
from common.training.sweep import (ConfigError, Progress, Run, Sweep, expand, finished_runs, load_config, plan,
                                   run_ray, run_sequential)


def make_parser() -> argparse.ArgumentParser:
    parser = Parser("sweep.py", description=__doc__, epilog=f"algorithms: {', '.join(BY_NAME)}")
    parser.add_argument("config", help="the sweep's YAML config")
    parser.add_argument("--ray_address", default=None, help="an existing Ray cluster (e.g. auto); default: a local Ray")
    parser.add_argument("--num_cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--no_ray", action="store_true", help="run one stage after another in this process")
    parser.add_argument("--dry_run", action="store_true", help="print the runs in order and stop")
    parser.add_argument("--seeds", type=str, default=None,
                        help="run only these of the config's seeds, e.g. 0,2,4 (two sweeps of one config can "
                             "share the grid: their runs are disjoint)")
    parser.add_argument("--algos", type=str, default=None,
                        help="run only these of the config's algorithms, e.g. sqv-clean,clean-own (the primary "
                             "arms of every seed first; a later sweep without it adds the rest on the same buffers)")
    return parser


def chosen_runs(argv: list[str] | None) -> tuple[argparse.Namespace, dict, list[Run]]:
    """The arguments, the config and its runs, of ``--seeds`` and ``--algos`` only where given (a seed or an
    algorithm outside the config is a one-line error)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.num_cpus is not None and args.num_cpus < 1:
        parser.error(f"--num_cpus must be at least 1, got {args.num_cpus}")
    config = load_config(args.config)
    try:
        seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds}: give integers separated by commas, e.g. 0,2,4")
    if seeds is not None and not set(seeds) <= set(config["seeds"]):
        parser.error(f"--seeds {args.seeds}: the config's seeds are {config['seeds']}")
    algos = None if args.algos is None else args.algos.split(",")
    if algos is not None and not set(algos) <= set(config["algos"]):
        parser.error(f"--algos {args.algos}: the config's algorithms are {','.join(config['algos'])}")
    return args, config, expand(config, seeds, algos)


def check_runs(runs: list[Run], path: str) -> None:
    """Each distinct run (seeds aside) parsed and resolved as main.py does before it starts, so a flag value
    out of range, an unknown env or flags that do not go together are one line now (exit code 2), not a
    failed run hours later. Only for runs on this machine: a cluster's workers may have what it lacks (a GPU)."""
    import contextlib
    import io

    import main

    seen = set()
    for run in runs:
        key = tuple("SEED" if run.argv[i - 1:i] == ["--seed"] else a for i, a in enumerate(run.argv))
        if key in seen:
            continue
        seen.add(key)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                args = main.parse_args(run.argv)
            main.resolve(args, args.env)
        except SystemExit:  # main.py's usage error, already one line
            message = stderr.getvalue().strip().removeprefix("error: ")
        except UserError as err:
            message = str(err)
        else:
            continue
        raise ConfigError(f"error: sweep config {path}: {run.name} would fail: {message}")


def print_plan(runs: list[Run], out_dir: str) -> None:
    """Each run, whether it is done, and its command, in order."""
    done_already, _ = finished_runs(runs, out_dir)
    for run in runs:
        state = "done" if run.name in done_already else "to run"
        print(f"{run.name:<48} {state:<7} python main.py {' '.join(run.argv)}")


def report(config: dict) -> None:
    """The results table and plots of the sweep's results, where it has any."""
    results = os.path.join(config["out_dir"], "results")
    if os.path.isdir(results) and any(name.endswith(".npy") for name in os.listdir(results)):
        from common.reporting.report import make_report  # matplotlib and torch: only for the report

        try:
            made = make_report(results, os.path.join(config["out_dir"], "plots"), last=config.get("last_evals", 1))
            print(f"[sweep] plots: {', '.join(made['figures'])}; table: {made['table']}")
        except UserError as err:  # no results, or a damaged results file
            print(f"[sweep] no table: {err}")


def main(argv: list[str] | None = None) -> int:
    args, config, runs = chosen_runs(argv)
    out_dir = config["out_dir"]
    if args.dry_run:
        print_plan(runs, out_dir)
        return 0
    if not args.ray_address:
        check_runs(runs, args.config)
    done_already, changed, runs = plan(runs, out_dir)
    if changed:
        print(f"[sweep] {len(changed)} finished runs have other arguments now ({', '.join(changed[:3])}"
              f"{', ...' if len(changed) > 3 else ''}): they run again, and the runs that need them")
    sweep = Sweep(runs, done_already, out_dir, Progress(len(runs), len(done_already)))
    print(f"[sweep] {len(runs)} runs, {len(done_already)} already done; logs in {os.path.join(out_dir, 'sweep')}")
    resources = config.get("resources") or {}
    if args.no_ray:
        run_sequential(sweep, max(1, int(resources.get("num_cpus", 1))))
    else:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("error: Ray is not installed: pip install -e '.[sweep]' (or use --no_ray)",
                  file=sys.stderr)
            return 2
        run_ray(sweep, resources, args.ray_address, args.num_cpus)
    for name, message in sweep.progress.failed:
        print(f"[sweep] FAILED {name}: {message}")
    report(config)
    return 1 if sweep.progress.failed else 0


if __name__ == "__main__":
    sys.exit(main())
