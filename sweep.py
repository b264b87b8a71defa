"""Sweeps: a grid of envs × seeds × algorithms run as main.py stages, on Ray.

    python sweep.py configs/minatar_study.yaml                 # a local Ray (workers = cores / cpus per run)
    python sweep.py CONFIG.yaml --ray_address auto             # an existing Ray cluster
    python sweep.py CONFIG.yaml --dry_run                      # print the runs and their order
    python sweep.py CONFIG.yaml --no_ray                       # one run after another, without Ray

The config (YAML) names ``out_dir``, ``envs``, ``seeds``, ``algos`` (the names in
``common/learning/algorithms.py``: bcq, sqv, bcq-aug, own, sqv-clean, clean-own, bcq-aug-clean, sqil), the
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
import glob
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from common.learning.algorithms import BY_NAME
from common.errors import UserError

ROOT = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Run:
    name: str               # e.g. "sqv__CartPole-v1__0"
    stage: str              # behavioral, buffer or offline
    argv: list[str]         # main.py's arguments
    needs: list[str] = field(default_factory=list)


class ConfigError(SystemExit):
    """A bad sweep config: its one line goes to stderr and the sweep exits with code 2."""

    def __init__(self, message: str):
        print(message, file=sys.stderr)
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def load_config(path: str) -> dict:
    try:
        import yaml
    except ImportError:
        raise ConfigError("error: sweep configs are YAML and PyYAML is not installed: pip install -e '.[sweep]'") from None

    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except OSError as err:
        raise ConfigError(f"error: cannot read sweep config {path} ({err.strerror})")
    except yaml.YAMLError as err:
        raise ConfigError(f"error: sweep config {path} is not valid YAML ({str(err).splitlines()[0]})")
    missing = [k for k in ("out_dir", "envs", "seeds", "algos") if k not in (config or {})]
    if missing:
        raise ConfigError(f"error: sweep config {path} lacks '{missing[0]}' (see sweep.py --help)")
    config["out_dir"] = os.path.abspath(config["out_dir"])  # one place for runs, markers and results
    unknown = [a for a in config["algos"] if a not in BY_NAME]
    if unknown:
        raise ConfigError(f"error: sweep config {path}: unknown algorithm '{unknown[0]}'; use {', '.join(BY_NAME)}")
    return config


def as_flags(values: dict | None) -> list[str]:
    flags = []
    for key, value in (values or {}).items():
        if value is True:
            flags.append(f"--{key}")
        elif value is not False and value is not None:
            flags += [f"--{key}", str(value)]
    return flags


def expand(config: dict, seeds: list[int] | None = None, algos: list[str] | None = None) -> list[Run]:
    """Every run of the grid (of ``seeds`` and ``algos`` only, where given), each after the runs it needs
    (behavioral → buffer → offline), seed by seed: a sweep stopped partway has whole seeds of every env."""
    runs = []
    stages = config.get("stages", {})
    for seed in config["seeds"] if seeds is None else [s for s in config["seeds"] if s in seeds]:
        for env in config["envs"]:
            common = ["--env", env, "--seed", str(seed), "--out_dir", config["out_dir"],
                      *as_flags(config.get("flags")), *as_flags(config.get("env_flags", {}).get(env))]
            tag = f"{env.replace('/', '_')}__{seed}"
            behavioral, buffer = f"behavioral__{tag}", f"buffer__{tag}"
            runs.append(Run(behavioral, "behavioral",
                            ["--train_behavioral", *common, *as_flags(stages.get("behavioral")), "--resume"]))
            runs.append(Run(buffer, "buffer", ["--generate_buffer", *common, *as_flags(stages.get("buffer"))],
                            [behavioral]))
            for algo in config["algos"] if algos is None else [a for a in config["algos"] if a in algos]:
                stage = BY_NAME[algo].stage
                runs.append(Run(f"{algo}__{tag}", stage,
                                [*BY_NAME[algo].flags, *common, *as_flags(stages.get(stage)), "--resume"], [buffer]))
    return runs


def marker(out_dir: str, run: Run) -> str:
    return os.path.join(out_dir, "sweep", f"{run.name}.done")


def without_resume(argv: list[str]) -> list[str]:
    return [a for a in argv if a != "--resume"]


def first_line(path: str) -> str | None:
    """The first line of a marker file, or None where there is none."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.readline().strip()


def signature(run: Run) -> str:
    """What a ``.done`` marker records of a run: its arguments, less ``--out_dir`` (where the marker is)
    and ``--resume`` (how it was started, not what it computes)."""
    argv = without_resume(run.argv)
    if "--out_dir" in argv:
        at = argv.index("--out_dir")
        del argv[at:at + 2]
    return " ".join(argv)


def finished_runs(runs: list[Run], out_dir: str) -> tuple[set[str], list[str]]:
    """The runs to skip: those whose marker records the arguments they have now and whose inputs are
    skipped too (``runs`` in dependency order). Also returns the runs that finished with other
    arguments (the config changed since): they run again, and so does every run after them."""
    done, changed = set(), []
    for run in runs:
        recorded = first_line(marker(out_dir, run))
        if recorded is None:
            continue
        if recorded not in (signature(run), " ".join(run.argv)):  # the second: markers of earlier versions
            changed.append(run.name)
        elif all(need in done for need in run.needs):
            done.add(run.name)
    needed = {need for run in runs if run.name not in done for need in run.needs}
    redo = [run for run in runs if run.name in done and run.name in needed and not outputs_present(run, out_dir)]
    while redo:  # a finished stage whose files are gone (a fresh clone) runs again for the runs still to do
        run = redo.pop()
        done.discard(run.name)
        redo += [other for other in runs if other.name in run.needs and other.name in done
                 and not outputs_present(other, out_dir)]
    return done, changed


def outputs_present(run: Run, out_dir: str) -> bool:
    """Whether the files a behavioral or buffer run wrote, which later runs read, are still there
    (a clone of a study's repository has its markers and results, not its models and buffers)."""
    env, seed = run.name.split("__")[1:]
    setting = f"{env}_{seed}"
    if run.stage == "behavioral":
        return bool(glob.glob(os.path.join(out_dir, "models", f"behavioral_{glob.escape(setting)}_*")))
    if run.stage == "buffer":
        return bool(glob.glob(os.path.join(out_dir, "buffers", f"*_{glob.escape(setting)}_manifest.json")))
    return True


def started(out_dir: str, run: Run) -> str:
    return os.path.join(out_dir, "sweep", f"{run.name}.started")


def plan(runs: list[Run], out_dir: str) -> tuple[set[str], list[str], list[Run]]:
    """What this sweep does: (the runs to skip, the finished runs whose arguments changed, every run
    as it is to be started). A run that is not skipped continues from its checkpoint (``--resume``)
    only where that checkpoint can be from these arguments and these inputs: the run last started with
    the same arguments (``{run}.started``) and every run it needs is skipped. Otherwise it starts
    over (main.py then drops the stage's old checkpoints). Markers of runs that run again are removed
    now, so that a sweep stopped partway never leaves them looking finished."""
    done, changed = finished_runs(runs, out_dir)
    planned = []
    for run in runs:
        if run.name in done:
            planned.append(run)
            continue
        if os.path.exists(marker(out_dir, run)):
            os.remove(marker(out_dir, run))
        same = (first_line(started(out_dir, run)) in (None, signature(run))
                and all(need in done for need in run.needs))
        argv = run.argv if same else without_resume(run.argv)
        planned.append(Run(run.name, run.stage, argv, run.needs))
    return done, changed, planned


def execute(run: Run, out_dir: str, threads: int) -> tuple[bool, str]:
    """Run one stage as a subprocess (``threads`` OpenMP threads); (succeeded, one-line message)."""
    os.makedirs(os.path.join(out_dir, "sweep"), exist_ok=True)
    log_path = os.path.join(out_dir, "sweep", f"{run.name}.log")
    with open(started(out_dir, run), "w") as f:
        f.write(signature(run) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.time()
    with open(log_path, "w") as log:
        code = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *run.argv], stdout=log,
                              stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    if code != 0:
        with open(log_path) as f:
            lines = [line.strip() for line in f if line.strip()]
        return False, f"exit {code}: {lines[-1] if lines else 'no output'} (log: {log_path})"
    with open(marker(out_dir, run), "w") as f:
        f.write(f"{signature(run)}\n{time.time() - start:.1f} s\n")
    os.remove(started(out_dir, run))
    return True, f"{time.time() - start:.0f} s"


class Progress:
    def __init__(self, total: int, skipped: int):
        self.total, self.done, self.failed, self.running, self.waiting = total, skipped, [], set(), 0

    def show(self) -> None:
        """``running`` counts the runs whose inputs are ready (started, or queued for a free CPU);
        ``waiting`` those still waiting for a run they need."""
        print(f"[sweep] {self.done}/{self.total} done, {len(self.running)} running, {len(self.failed)} failed, "
              f"{self.waiting} waiting", flush=True)


def run_sequential(runs: list[Run], done_already: set[str], out_dir: str, progress: Progress, threads: int) -> None:
    ok: dict[str, bool] = {}
    for run in runs:
        if run.name in done_already:
            ok[run.name] = True
            continue
        if not all(ok.get(need, False) for need in run.needs):
            progress.failed.append((run.name, f"not run: {', '.join(n for n in run.needs if not ok.get(n))} failed"))
            ok[run.name] = False
            continue
        progress.running = {run.name}
        succeeded, message = execute(run, out_dir, threads)
        progress.running = set()
        ok[run.name] = succeeded
        if succeeded:
            progress.done += 1
        else:
            progress.failed.append((run.name, message))
        progress.show()


def run_ray(runs: list[Run], done_already: set[str], out_dir: str, progress: Progress, args, resources: dict) -> None:
    import ray

    cpus = float(resources.get("num_cpus", 1))
    gpus = float(resources.get("num_gpus", 0))
    if gpus and not args.ray_address:
        import torch

        if torch.cuda.device_count() < gpus:
            raise ConfigError(f"error: the config asks for {gpus:g} GPU per run but this machine has "
                             f"{torch.cuda.device_count()}; set resources.num_gpus: 0 or use --ray_address")
    runtime_env = {"env_vars": {"PYTHONPATH": ROOT}}  # workers import this module
    if args.ray_address:
        ray.init(address=args.ray_address, log_to_driver=False, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=args.num_cpus or os.cpu_count(), log_to_driver=False, include_dashboard=False,
                 runtime_env=runtime_env)
    threads = max(1, int(cpus))

    @ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)
    def task(run: Run, *upstream: tuple[bool, str]) -> tuple[bool, str]:
        failed = [message for succeeded, message in upstream if not succeeded]
        if failed:
            return False, f"not run: a run it needs failed ({failed[0][:120]})"
        return execute(run, out_dir, threads)

    refs, names = {}, {}
    finished_ok = ray.put((True, "done earlier"))
    for run in runs:
        if run.name in done_already:
            refs[run.name] = finished_ok
            continue
        refs[run.name] = task.remote(run, *(refs[need] for need in run.needs))
        names[refs[run.name]] = run.name
    pending = list(names)
    finished = set(done_already)
    needs = {run.name: run.needs for run in runs}

    def update() -> None:
        unfinished = [names[r] for r in pending]
        progress.running = {n for n in unfinished if all(need in finished for need in needs[n])}
        progress.waiting = len(unfinished) - len(progress.running)
        progress.show()

    update()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=30.0)
        for ref in ready:
            try:
                succeeded, message = ray.get(ref)
            except ray.exceptions.RayError as err:  # the task died (out of memory, a crashed worker)
                succeeded, message = False, f"Ray: {str(err).splitlines()[0][:160]}"
            finished.add(names[ref])
            if succeeded:
                progress.done += 1
            else:
                progress.failed.append((names[ref], message))
        update()
    ray.shutdown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    args = parser.parse_args(argv)
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
    runs = expand(config, seeds, algos)
    out_dir = config["out_dir"]
    if args.dry_run:
        done_already, _ = finished_runs(runs, out_dir)
        for run in runs:
            state = "done" if run.name in done_already else "to run"
            print(f"{run.name:<48} {state:<7} python main.py {' '.join(run.argv)}")
        return 0
    done_already, changed, runs = plan(runs, out_dir)
    if changed:
        print(f"[sweep] {len(changed)} finished runs have other arguments now ({', '.join(changed[:3])}"
              f"{', ...' if len(changed) > 3 else ''}): they run again, and the runs that need them")
    progress = Progress(len(runs), len(done_already))
    print(f"[sweep] {len(runs)} runs, {len(done_already)} already done; logs in {os.path.join(out_dir, 'sweep')}")
    resources = config.get("resources", {})
    if args.no_ray:
        run_sequential(runs, done_already, out_dir, progress, max(1, int(resources.get("num_cpus", 1))))
    else:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("error: Ray is not installed: pip install -e '.[sweep]' (or use --no_ray)",
                  file=sys.stderr)
            return 2
        run_ray(runs, done_already, out_dir, progress, args, resources)
    for name, message in progress.failed:
        print(f"[sweep] FAILED {name}: {message}")
    results = os.path.join(out_dir, "results")
    if os.path.isdir(results) and any(name.endswith(".npy") for name in os.listdir(results)):
        sys.path.insert(0, ROOT)
        from plot import make_report

        try:
            report = make_report(results, os.path.join(out_dir, "plots"), last=int(config.get("last_evals", 1)))
            print(f"[sweep] plots: {', '.join(report['figures'])}; table: {report['table']}")
        except (FileNotFoundError, UserError) as err:  # no results, or a damaged results file
            print(f"[sweep] no table: {err}")
    return 1 if progress.failed else 0


if __name__ == "__main__":
    sys.exit(main())
