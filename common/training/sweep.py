"""The sweep engine: a grid of envs × seeds × algorithms expanded into main.py runs (behavioral → buffer →
offline, one behavioral agent and one buffer per env × seed), the ``.done`` markers that let a finished
run be skipped while its arguments are unchanged, the plan (what is skipped, what resumes from its
checkpoint) and its execution, one run after another or on Ray."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from common.learning.algorithms import BY_NAME
from common.training.sweep_config import ConfigError, load_config  # noqa: F401 (the engine's front)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # where main.py is


@dataclass
class Run:
    name: str               # e.g. "sqv__CartPole-v1__0"
    stage: str              # behavioral, buffer or offline
    argv: list[str]         # main.py's arguments
    needs: list[str] = field(default_factory=list)


def as_flags(values: dict | None) -> list[str]:
    """main.py's flags of a config's mapping: ``--key value``, ``--key`` for True, nothing for False/None."""
    flags = []
    for key, value in (values or {}).items():
        if value is True:
            flags.append(f"--{key}")
        elif value is not False and value is not None:
            flags += [f"--{key}", str(value)]
    return flags


def setting_runs(config: dict, env: str, seed: int, algos: list[str]) -> list[Run]:
    """The runs of one env × seed: its behavioral agent, its buffer, then each algorithm on that buffer."""
    stages = config.get("stages", {})
    common = ["--env", env, "--seed", str(seed), "--out_dir", config["out_dir"],
              *as_flags(config.get("flags")), *as_flags(config.get("env_flags", {}).get(env))]
    tag = f"{env.replace('/', '_')}__{seed}"
    behavioral, buffer = f"behavioral__{tag}", f"buffer__{tag}"
    runs = [Run(behavioral, "behavioral", ["--train_behavioral", *common, *as_flags(stages.get("behavioral")), "--resume"]),
            Run(buffer, "buffer", ["--generate_buffer", *common, *as_flags(stages.get("buffer"))], [behavioral])]
    for algo in map(BY_NAME.get, algos):
        argv = [*algo.flags, *common, *as_flags(stages.get(algo.stage)), "--resume"]
        runs.append(Run(f"{algo.name}__{tag}", algo.stage, argv, [buffer]))
    return runs


def expand(config: dict, seeds: list[int] | None = None, algos: list[str] | None = None) -> list[Run]:
    """Every run of the grid (of ``seeds`` and ``algos`` only, where given), each after the runs it needs
    (behavioral → buffer → offline), seed by seed: a sweep stopped partway has whole seeds of every env."""
    chosen = config["algos"] if algos is None else [a for a in config["algos"] if a in algos]
    return [run for seed in (config["seeds"] if seeds is None else [s for s in config["seeds"] if s in seeds])
            for env in config["envs"] for run in setting_runs(config, env, seed, chosen)]


def marker(out_dir: str, run: Run) -> str:
    """The file a run that succeeded leaves: its `signature`, then its duration."""
    return os.path.join(out_dir, "sweep", f"{run.name}.done")


def started(out_dir: str, run: Run) -> str:
    """The file a run leaves while it runs: its `signature` (whether its checkpoint can be resumed)."""
    return os.path.join(out_dir, "sweep", f"{run.name}.started")


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


@dataclass
class Progress:
    total: int
    done: int                                                    # succeeded, the skipped runs included
    failed: list[tuple[str, str]] = field(default_factory=list)  # (run, one-line message)
    running: set[str] = field(default_factory=set)
    waiting: int = 0

    def record(self, name: str, succeeded: bool, message: str) -> None:
        if succeeded:
            self.done += 1
        else:
            self.failed.append((name, message))

    def show(self) -> None:
        """``running`` counts the runs whose inputs are ready (started, or queued for a free CPU);
        ``waiting`` those still waiting for a run they need."""
        print(f"[sweep] {self.done}/{self.total} done, {len(self.running)} running, {len(self.failed)} failed, "
              f"{self.waiting} waiting", flush=True)


@dataclass
class Sweep:
    """A planned sweep: its runs in dependency order, those skipped (finished earlier), where it writes."""
    runs: list[Run]
    skipped: set[str]
    out_dir: str
    progress: Progress


def run_sequential(sweep: Sweep, threads: int) -> None:
    """Every run not skipped, one after another; a run whose inputs failed is not started."""
    ok: dict[str, bool] = {}
    progress = sweep.progress
    for run in sweep.runs:
        if run.name in sweep.skipped:
            ok[run.name] = True
            continue
        if not all(ok.get(need, False) for need in run.needs):
            progress.failed.append((run.name, f"not run: {', '.join(n for n in run.needs if not ok.get(n))} failed"))
            ok[run.name] = False
            continue
        progress.running = {run.name}
        ok[run.name], message = execute(run, sweep.out_dir, threads)
        progress.running = set()
        progress.record(run.name, ok[run.name], message)
        progress.show()


def start_ray(resources: dict, address: str | None, num_cpus: int | None) -> None:
    """Connect to the Ray cluster at ``address``, or start a local Ray of ``num_cpus`` CPUs (default: all)."""
    import ray

    gpus = float(resources.get("num_gpus", 0))
    if gpus and not address:
        import torch

        if torch.cuda.device_count() < gpus:
            raise ConfigError(f"error: the config asks for {gpus:g} GPU per run but this machine has "
                              f"{torch.cuda.device_count()}; set resources.num_gpus: 0 or use --ray_address")
    runtime_env = {"env_vars": {"PYTHONPATH": ROOT}}  # workers import this module
    if address:
        ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), log_to_driver=False, include_dashboard=False,
                 runtime_env=runtime_env)
    cpus, total = float(resources.get("num_cpus", 1)), ray.cluster_resources().get("CPU", 0)
    if not address and cpus > total:  # a local Ray would wait forever (a cluster may still scale up)
        ray.shutdown()
        raise ConfigError(f"error: the config asks for {cpus:g} CPUs per run but this Ray has {total:g}; lower "
                          "resources.num_cpus or raise --num_cpus")


def submit(sweep: Sweep, resources: dict) -> dict:
    """One Ray task per run not skipped, each started once the runs it needs have succeeded (a task
    whose inputs failed returns at once, not run); Ray reference → run name."""
    import ray

    cpus, gpus = float(resources.get("num_cpus", 1)), float(resources.get("num_gpus", 0))
    threads, out_dir = max(1, int(cpus)), sweep.out_dir

    @ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)
    def task(run: Run, *upstream: tuple[bool, str]) -> tuple[bool, str]:
        failed = [message for succeeded, message in upstream if not succeeded]
        if failed:
            return False, f"not run: a run it needs failed ({failed[0][:120]})"
        return execute(run, out_dir, threads)

    refs, names = {}, {}
    finished_ok = ray.put((True, "done earlier"))
    for run in sweep.runs:
        if run.name in sweep.skipped:
            refs[run.name] = finished_ok
            continue
        refs[run.name] = task.remote(run, *(refs[need] for need in run.needs))
        names[refs[run.name]] = run.name
    return names


def run_ray(sweep: Sweep, resources: dict, address: str | None = None, num_cpus: int | None = None) -> None:
    """Every run not skipped as a Ray task (``resources`` per run: ``num_cpus``, ``num_gpus``), showing
    the progress whenever a run ends (at least every 30 s)."""
    import ray

    start_ray(resources, address, num_cpus)
    names = submit(sweep, resources)
    pending, finished = list(names), set(sweep.skipped)
    needs = {run.name: run.needs for run in sweep.runs}
    progress = sweep.progress

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
            progress.record(names[ref], succeeded, message)
        update()
    ray.shutdown()
