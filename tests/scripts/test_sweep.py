"""sweep.py and its engine (common/training/sweep.py): grid expansion and order, skipping finished runs,
resuming, and a real local Ray sweep."""
import os
import sys

import numpy as np
import pytest

import sweep
from common.learning.algorithms import BY_NAME
from common.training import sweep as engine

CONFIG = """
out_dir: {out}
envs: [CartPole-v1, DiscreteStochasticDecisionProcess-v0]
seeds: [0, 1]
algos: [bcq, sqv]
flags: {{eval_episodes: 1, batch_size: 16, num_envs: 2}}
stages:
  behavioral: {{max_timesteps: 200, start_timesteps: 100, eval_freq: 200}}
  buffer: {{max_timesteps: 200}}
  offline: {{max_timesteps: 40, eval_freq: 20}}
resources: {{num_cpus: 1}}
"""


def write_config(tmp_path, text=CONFIG):
    path = tmp_path / "sweep.yaml"
    path.write_text(text.format(out=tmp_path / "out"))
    return str(path)


class FakeRuns:
    """Stands in for ``common.training.sweep.execute``: records each run (``record(run)``), fails the runs in ``broken``
    (only the first time with ``once``) and writes the others' markers (and the behavioral model and
    buffer manifest a later run reads) as a finished run does."""

    def __init__(self, broken=(), once=False, record=lambda run: run.name):
        self.calls, self.broken, self.once, self.record = [], set(broken), once, record

    def __call__(self, run, out_dir, threads):
        self.calls.append(self.record(run))
        if run.name in self.broken:
            if self.once:
                self.broken.discard(run.name)
            return False, "exit 1: error: something broke"
        with open(engine.marker(out_dir, run), "w") as f:
            f.write(engine.signature(run) + "\n")
        env, seed = run.name.split("__")[1:]
        output = {"behavioral": ("models", f"behavioral_{env}_{seed}_Q"),
                  "buffer": ("buffers", f"Default_{env}_{seed}_manifest.json")}.get(run.stage)
        if output:  # the files later runs read
            os.makedirs(os.path.join(out_dir, output[0]), exist_ok=True)
            open(os.path.join(out_dir, *output), "w").close()
        return True, "0 s"


def test_grid_expands_with_one_buffer_per_env_and_seed_before_its_algorithms(tmp_path):
    runs = engine.expand(engine.load_config(write_config(tmp_path)))
    assert len(runs) == 2 * 2 * (2 + 2)
    names = [r.name for r in runs]
    position = {n: i for i, n in enumerate(names)}
    for run in runs:
        assert all(position[need] < position[run.name] for need in run.needs)
    sqv = next(r for r in runs if r.name == "sqv__CartPole-v1__1")
    assert sqv.needs == ["buffer__CartPole-v1__1"] and "--sqv" in sqv.argv and "--resume" in sqv.argv
    assert sqv.argv[sqv.argv.index("--max_timesteps") + 1] == "40"
    buffer = next(r for r in runs if r.name == "buffer__CartPole-v1__1")
    assert buffer.needs == ["behavioral__CartPole-v1__1"] and "--generate_buffer" in buffer.argv
    assert sum(r.stage == "buffer" for r in runs) == 4  # shared by both algorithms
    subset = engine.expand(engine.load_config(write_config(tmp_path)), seeds=[1], algos=["sqv"])
    assert [r.name for r in subset] == [f"{stage}__{env}__1" for env in ("CartPole-v1",
                                        "DiscreteStochasticDecisionProcess-v0") for stage in ("behavioral", "buffer", "sqv")]
    assert [r.argv for r in subset if r.name == "sqv__CartPole-v1__1"] == [sqv.argv]  # same run, same marker


def test_a_finished_stage_whose_files_are_gone_runs_again_for_the_runs_still_to_do(tmp_path):
    """A clone of a study has its markers, not its models and buffers: adding an algorithm then
    retrains the behavioral agent and regenerates the buffer (same seed) instead of failing."""
    config = engine.load_config(write_config(tmp_path))
    out = config["out_dir"]
    os.makedirs(os.path.join(out, "sweep"))
    first = engine.expand(config, seeds=[0], algos=["bcq"])
    for run in first:
        with open(engine.marker(out, run), "w") as f:
            f.write(engine.signature(run) + "\n")
    both = engine.expand(config, seeds=[0], algos=["bcq", "sqv"])
    done, _ = engine.finished_runs(both, out)
    assert done == {f"bcq__{env}__0" for env in ("CartPole-v1", "DiscreteStochasticDecisionProcess-v0")}
    assert engine.finished_runs(first, out)[0] == {r.name for r in first}  # nothing to do: nothing reruns
    for env in ("CartPole-v1", "DiscreteStochasticDecisionProcess-v0"):
        os.makedirs(os.path.join(out, "models"), exist_ok=True)
        os.makedirs(os.path.join(out, "buffers"), exist_ok=True)
        open(os.path.join(out, "models", f"behavioral_{env}_0_Q"), "w").close()
        open(os.path.join(out, "buffers", f"Default_{env}_0_manifest.json"), "w").close()
    assert engine.finished_runs(both, out)[0] == {r.name for r in first}


def test_seeds_and_algos_outside_the_config_are_one_line_errors(tmp_path, capsys):
    for flag in (["--seeds", "7"], ["--algos", "sqv,cql"], ["--seeds", "x"]):
        with pytest.raises(SystemExit) as exit_:
            sweep.main([write_config(tmp_path), "--dry_run", *flag])
        assert exit_.value.code == 2 and flag[1] in capsys.readouterr().err


def test_help_lists_every_algorithm(capsys):
    with pytest.raises(SystemExit) as exit_:
        sweep.main(["--help"])
    assert exit_.value.code == 0
    assert f"algorithms: {', '.join(BY_NAME)}" in capsys.readouterr().out


def test_bad_configs_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    with pytest.raises(SystemExit) as exit_:
        sweep.main([write_config(tmp_path), "--dry_run"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: sweep configs are YAML and PyYAML is not installed: pip install -e '.[sweep]'\n"
    monkeypatch.undo()
    with pytest.raises(SystemExit, match="lacks 'algos'"):
        engine.load_config(write_config(tmp_path, "out_dir: x\nenvs: [a]\nseeds: [0]\n"))
    with pytest.raises(SystemExit, match="'cql' is not an algorithm"):
        engine.load_config(write_config(tmp_path, "out_dir: x\nenvs: [a]\nseeds: [0]\nalgos: [cql]\n"))


GRID = "out_dir: x\nenvs: [CartPole-v1]\nseeds: [0]\nalgos: [bcq]\n"


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "not a mapping"),
    ("out_dir: x\nenvs: CartPole-v1\nseeds: [0]\nalgos: [bcq]\n", "envs must be a non-empty list"),
    ("out_dir: x\nenvs: [CartPole-v1]\nseeds: 0\nalgos: [bcq]\n", "seeds must be a non-empty list"),
    ("out_dir: x\nenvs: [CartPole-v1]\nseeds: [0]\nalgos:\n", "algos must be a non-empty list"),
    ("out_dir: x\nenvs: [CartPole-v1]\nseeds: [0, 0]\nalgos: [bcq]\n", "seeds lists 0 twice"),
    ("out_dir: x\nenvs: [CartPole-v1]\nseeds: [-1]\nalgos: [bcq]\n", "-1 is not an integer in [0, 4294966295]"),
    ("out_dir: x\nenvs: [CartPole-v1]\nseeds: [0.5]\nalgos: [bcq]\n", "0.5 is not an integer in [0, 4294966295]"),
    ("out_dir: x\nenvs: [CartPole-v1]\nseeds: [0, 4294967295]\nalgos: [bcq]\n", "4294967295 is not an integer in"),
    (GRID + "flags: {polyak_target_update: false}\n", "write no-polyak_target_update: true"),
    ("out_dir:\nenvs: [CartPole-v1]\nseeds: [0]\nalgos: [bcq]\n", "out_dir must be a folder's path"),
    (GRID + "colour: red\n", "unknown key 'colour'"),
    (GRID + "stages: {bufer: {max_timesteps: 5}}\n", "'bufer' is not a stage"),
    (GRID + "flags: [eval_episodes]\n", "flags must be a mapping"),
    (GRID + "flags: {no_such_flag: 3}\n", "'no_such_flag' is not a main.py flag"),
    (GRID + "stages: {offline: {max_timestep: 3}}\n", "stages.offline: 'max_timestep' is not a main.py flag"),
    (GRID + "env_flags: {Pong: {seed: 1}}\n", "'Pong' is not one of the config's envs"),
    (GRID + "resources: {num_cpus: -3}\n", "resources.num_cpus must be a non-negative number"),
    (GRID + "resources: {num_cpus: 0}\n", "resources.num_cpus must be positive"),
    (GRID + "last_evals: 0\n", "last_evals must be a positive integer"),
    (GRID + "last_evals: zero\n", "last_evals must be a positive integer"),
    # values and env ids: each distinct run is parsed and resolved as main.py would, before the first starts
    (GRID.replace("[CartPole-v1]", "[CartPole-v1, NoSuchEnv-v0]"), "behavioral__NoSuchEnv-v0__0 would fail: unknown env id"),
    (GRID + "flags: {eval_episodes: abc}\n", "behavioral__CartPole-v1__0 would fail: argument --eval_episodes: invalid int"),
    (GRID + "stages: {offline: {BCQ_threshold: 1.5}}\n", "bcq__CartPole-v1__0 would fail: --BCQ_threshold must lie in"),
    (GRID + "flags: {lmbda: 0.5}\n", "would fail: --lmbda does not apply to CartPole-v1"),
])
def test_bad_configs_and_runs_that_would_fail_are_one_line_errors_before_anything_runs(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)  # out_dir x is tmp_path/x
    (tmp_path / "sweep.yaml").write_text(text)
    with pytest.raises(SystemExit) as exit_:
        sweep.main([str(tmp_path / "sweep.yaml"), "--no_ray"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "out").exists()


def test_sqil_s_stage_and_no_switches_are_config_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yaml").write_text(GRID.replace("[bcq]", "[bcq, sqil]")
                                         + "stages: {sqil: {max_timesteps: 100}}\nflags: {no-polyak_target_update: true}\n")
    assert sweep.main([str(tmp_path / "sweep.yaml"), "--dry_run"]) == 0
    plan = capsys.readouterr().out.splitlines()
    sqil = next(line for line in plan if line.startswith("sqil__"))
    assert "--sqil" in sqil and "--max_timesteps 100" in sqil and "--no-polyak_target_update" in sqil


def test_a_run_bigger_than_the_local_ray_is_an_error_not_a_wait(tmp_path, capsys):
    pytest.importorskip("ray")
    with pytest.raises(SystemExit) as exit_:
        sweep.main([write_config(tmp_path, CONFIG.replace("num_cpus: 1", "num_cpus: 64")), "--num_cpus", "1"])
    assert exit_.value.code == 2 and "64 CPUs per run but this Ray has 1" in capsys.readouterr().err


def test_finished_runs_are_skipped_and_failures_stop_only_their_dependents(tmp_path, monkeypatch, capsys):
    fake = FakeRuns({"behavioral__CartPole-v1__0"}, once=True)  # fails once, as if interrupted or out of memory
    calls = fake.calls
    os.makedirs(tmp_path / "out" / "sweep")
    monkeypatch.setattr(engine, "execute", fake)
    config = write_config(tmp_path)
    assert sweep.main([config, "--no_ray"]) == 1
    out = capsys.readouterr().out
    assert "FAILED behavioral__CartPole-v1__0: exit 1: error: something broke" in out
    assert "FAILED sqv__CartPole-v1__0: not run: buffer__CartPole-v1__0 failed" in out
    assert "buffer__CartPole-v1__0" not in calls and len(calls) == 1 + 3 * 4  # the other env × seeds all ran
    calls.clear()
    assert sweep.main([config, "--no_ray"]) == 0  # only what had not finished runs again
    assert calls == ["behavioral__CartPole-v1__0", "buffer__CartPole-v1__0", "bcq__CartPole-v1__0",
                     "sqv__CartPole-v1__0"]
    assert "16 runs, 12 already done" in capsys.readouterr().out


def test_runs_whose_arguments_changed_run_again_with_the_runs_after_them(tmp_path, monkeypatch, capsys):
    fake = FakeRuns()
    calls = fake.calls
    os.makedirs(tmp_path / "out" / "sweep")
    monkeypatch.setattr(engine, "execute", fake)
    assert sweep.main([write_config(tmp_path), "--no_ray"]) == 0 and len(calls) == 16
    calls.clear()
    longer_offline = CONFIG.replace("offline: {{max_timesteps: 40", "offline: {{max_timesteps: 80")
    assert sweep.main([write_config(tmp_path, longer_offline), "--no_ray"]) == 0
    assert sorted(calls) == sorted(f"{a}__{e}__{s}" for a in ("bcq", "sqv") for s in (0, 1)
                                   for e in ("CartPole-v1", "DiscreteStochasticDecisionProcess-v0"))
    assert "8 finished runs have other arguments now" in capsys.readouterr().out
    calls.clear()
    one_env = longer_offline.rstrip() + "\nenv_flags: {{CartPole-v1: {{lr: 0.001}}}}\n"
    assert sweep.main([write_config(tmp_path, one_env), "--no_ray"]) == 0
    assert len(calls) == 8 and all("CartPole" in name for name in calls)  # behavioral, buffer and both algorithms
    calls.clear()
    assert sweep.main([write_config(tmp_path, one_env), "--no_ray"]) == 0 and calls == []
    # markers written before they recorded arguments without --out_dir still count
    run = engine.expand(engine.load_config(write_config(tmp_path, one_env)))[0]
    with open(engine.marker(str(tmp_path / "out"), run), "w") as f:
        f.write(" ".join(run.argv) + "\n")
    assert sweep.main([write_config(tmp_path, one_env), "--no_ray"]) == 0 and calls == []


def test_a_changed_behavioral_stage_reruns_everything_after_it_even_across_a_failure(tmp_path, monkeypatch, capsys):
    fake = FakeRuns(record=lambda run: (run.name, "--resume" in run.argv))
    calls, broken = fake.calls, fake.broken
    os.makedirs(tmp_path / "out" / "sweep")
    monkeypatch.setattr(engine, "execute", fake)
    assert sweep.main([write_config(tmp_path), "--no_ray"]) == 0
    calls.clear()
    longer = write_config(tmp_path, CONFIG.replace("behavioral: {{max_timesteps: 200", "behavioral: {{max_timesteps: 300"))
    broken.add("buffer__CartPole-v1__0")  # the sweep stops partway for that env × seed
    assert sweep.main([longer, "--no_ray"]) == 1
    assert len(calls) == 16 - 2  # the two offline runs after the broken buffer did not start
    assert ("behavioral__CartPole-v1__0", True) in calls  # its own arguments: it may continue its checkpoint
    assert ("buffer__CartPole-v1__1", False) in calls and ("bcq__CartPole-v1__1", False) in calls  # new inputs
    calls.clear()
    broken.clear()
    assert sweep.main([longer, "--no_ray"]) == 0  # the old markers of the unrun runs do not count
    assert sorted(name for name, _ in calls) == ["bcq__CartPole-v1__0", "buffer__CartPole-v1__0", "sqv__CartPole-v1__0"]


def test_a_run_started_with_other_arguments_does_not_resume(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(engine, "execute", lambda run, out_dir, threads: (seen.setdefault(run.name, run.argv), (True, "")))
    config = write_config(tmp_path)
    runs = engine.expand(engine.load_config(config))
    os.makedirs(tmp_path / "out" / "sweep")
    for run, recorded in ((runs[0], "--other flags"), (runs[4], engine.signature(runs[4]))):
        with open(engine.started(str(tmp_path / "out"), run), "w") as f:
            f.write(recorded + "\n")  # interrupted, with a checkpoint of those arguments
    _, _, planned = engine.plan(runs, str(tmp_path / "out"))
    assert "--resume" not in planned[0].argv and "--resume" in planned[4].argv  # behavioral runs of two settings


def test_local_ray_sweep_end_to_end(tmp_path, capsys):
    config = write_config(tmp_path, CONFIG.replace(", DiscreteStochasticDecisionProcess-v0", ""))  # 8 runs
    assert sweep.main([config, "--num_cpus", "2"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "0/8 done, 2 running, 0 failed, 6 waiting" in out  # the 2 behavioral runs first
    assert "8/8 done, 0 running, 0 failed, 0 waiting" in out
    results = tmp_path / "out" / "results"
    for seed in (0, 1):
        for algo in ("BCQ", "SQV"):
            assert np.load(results / f"{algo}_CartPole-v1_{seed}.npy").shape == (2,)
    assert (tmp_path / "out" / "plots" / "table.md").is_file()
    assert sweep.main([config, "--num_cpus", "2"]) == 0  # everything finished: nothing runs
    assert "8 runs, 8 already done" in capsys.readouterr().out
