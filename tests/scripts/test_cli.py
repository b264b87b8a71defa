"""End-to-end smoke runs of every stage through the CLI, repeatability, and clean errors."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.learning.algorithms import OFFLINE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=600)


def ok(*args):
    result = run(*args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def ok_here(capsys, *args):
    """``main.main`` in this process: the same parser and stages without an interpreter's start-up (torch's
    imports cost ~4 s a run); each test's first stages still run as real processes through `ok`."""
    import main

    code = main.main([str(a) for a in args])
    out = capsys.readouterr()
    assert code == 0, out.out[-2000:] + out.err[-4000:]
    return out.out


TINY = {
    "CartPole-v1": ["--max_timesteps", 300, "--start_timesteps", 100, "--eval_freq", 150, "--eval_episodes", 2,
                    "--batch_size", 16],
    "MinAtar/Breakout-v1": ["--max_timesteps", 300, "--start_timesteps", 100, "--eval_freq", 150,
                            "--eval_episodes", 2, "--batch_size", 16, "--max_episode_timesteps", 200],
    "PongNoFrameskip-v4": ["--max_timesteps", 160, "--start_timesteps", 40, "--eval_freq", 80, "--eval_episodes", 1,
                           "--batch_size", 8, "--buffer_size", 1000, "--max_episode_timesteps", 50,
                           "--target_update_freq", 20],
    "DiscreteStochasticDecisionProcess-v0": ["--max_timesteps", 300, "--start_timesteps", 100, "--eval_freq", 150,
                                             "--eval_episodes", 2, "--batch_size", 16],
    "Pendulum-v1": ["--max_timesteps", 300, "--start_timesteps", 100, "--eval_freq", 150, "--eval_episodes", 1,
                    "--batch_size", 16],
    "Hopper-v5": ["--max_timesteps", 300, "--start_timesteps", 100, "--eval_freq", 150, "--eval_episodes", 1,
                  "--batch_size", 16, "--max_episode_timesteps", 100],
}
CONTINUOUS = ("Pendulum-v1", "Hopper-v5")


@pytest.mark.parametrize("env", list(TINY))
def test_every_stage_end_to_end(env, tmp_path, capsys):
    flags = ["--env", env, "--out_dir", tmp_path, "--log_freq", 10, *TINY[env]]
    if env == "CartPole-v1":
        flags.append("--tensorboard")
    setting = env.replace("/", "_") + "_0"
    loss_name = "critic_loss=" if env in CONTINUOUS else "q_loss="
    log = ok("--train_behavioral", *flags)
    assert loss_name in log  # at least one gradient step happened before the last evaluation
    for suffix in (("actor", "critic") if env in CONTINUOUS else ("Q", "optimizer")):
        assert (tmp_path / "models" / f"behavioral_{setting}_{suffix}").is_file()
    ok("--generate_buffer", *flags)
    buffers = sorted(p.name for p in (tmp_path / "buffers").iterdir())
    expected = (["action", "first_timestep", "not_done", "replay_info", "reward", "state_161"]
                if "Pong" in env else ["action", "next_state", "not_done", "ptr", "reward", "state"])
    name = "Robust" if env in CONTINUOUS else "Default"  # the reference codes' default buffer names
    assert buffers == sorted([f"{name}_{setting}_{part}.npy" for part in expected] + [f"{name}_{setting}_manifest.json"])
    if env == "Pendulum-v1":  # its episodes only ever end by the time limit: never a terminal
        not_done = np.load(tmp_path / "buffers" / f"{name}_{setting}_not_done.npy")
        assert not_done.min() == 1.0 and len(not_done) == 300
    offline = [("BCQ", []), ("SQV", ["--sqv", "--mmap"])]  # SQV reads the buffer memory-mapped
    if env in ("CartPole-v1", "MinAtar/Breakout-v1", "PongNoFrameskip-v4"):  # every other arm of algorithms.py
        offline += [(a.prefix, list(a.flags)) for a in OFFLINE if a.prefix not in ("BCQ", "SQV")]
    elif env == "Pendulum-v1":  # the continuous learner: the --aug control and the clean views
        offline += [(a.prefix, list(a.flags)) for a in OFFLINE if a.prefix in ("BCQaug", "SQVclean", "SQVcleanOwn")]
    for i, (algo, extra) in enumerate(offline):
        log = ok(*flags, *extra) if i == 0 else ok_here(capsys, *flags, *extra)
        assert f"[{algo}]" in log and loss_name in log
        returns = np.load(tmp_path / "results" / f"{algo}_{setting}.npy")
        steps, freq = TINY[env][1], TINY[env][5]
        assert returns.shape == (steps // freq,) and np.isfinite(returns).all()
    if env in ("CartPole-v1", "Pendulum-v1"):  # off-policy evaluation of the SQV policy, both families
        log = ok_here(capsys, "--fqe", "--sqv", *flags)
        assert "[FQE_SQV] estimated initial-state value" in log
        assert (tmp_path / "results" / f"FQE_SQV_{setting}.json").is_file()
    if env not in CONTINUOUS:  # SQIL: online, the buffer as demonstrations
        log = ok_here(capsys, "--sqil", *flags)
        assert "[SQIL]" in log and "q_loss=" in log
        assert np.load(tmp_path / "results" / f"SQIL_{setting}.npy").shape == (TINY[env][1] // TINY[env][5],)
    for name in ("behavioral", "buffer_performance", "buffer_returns"):
        assert np.isfinite(np.load(tmp_path / "results" / f"{name}_{setting}.npy")).all()
    for name in ("behavioral", "BCQ", "SQV"):  # CSV logs beside the reference files
        evals = (tmp_path / "results" / f"{name}_{setting}_eval.csv").read_text().splitlines()
        assert evals[0] == "step,mean_return,std_return,episodes,wall_seconds" and len(evals) >= 2
        train = (tmp_path / "results" / f"{name}_{setting}_train.csv").read_text().splitlines()
        assert train[0].startswith("step,wall_seconds,") and len(train) >= 2
    assert ("epsilon" in (tmp_path / "results" / f"behavioral_{setting}_train.csv").read_text()) == (
        env not in CONTINUOUS)
    if env == "CartPole-v1":
        assert any((tmp_path / "runs" / f"SQV_{setting}").iterdir())  # --tensorboard events
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "buffers" / "MinAtar").exists()


def test_same_command_twice_gives_identical_results(tmp_path, capsys):
    """Each stage run twice, once as a process and once in this one (whose torch has already run others),
    gives the same bits."""
    flags = ["--env", "CartPole-v1", "--out_dir", tmp_path, *TINY["CartPole-v1"]]
    for stage, name in (["--train_behavioral"], "behavioral"), ([], "BCQ"), (["--sqv"], "SQV"):
        if name == "BCQ":
            ok_here(capsys, "--generate_buffer", *flags)
        ok(*stage, *flags)
        first_model = torch.load(tmp_path / "models" / f"{name}_CartPole-v1_0_Q")
        first_results = np.load(tmp_path / "results" / f"{name}_CartPole-v1_0.npy")
        ok_here(capsys, *stage, *flags)
        second_model = torch.load(tmp_path / "models" / f"{name}_CartPole-v1_0_Q")
        assert all(torch.equal(first_model[k], second_model[k]) for k in first_model)
        np.testing.assert_array_equal(first_results, np.load(tmp_path / "results" / f"{name}_CartPole-v1_0.npy"))


def test_reference_format_buffer_trains(reference_buffer):
    """A buffer as the reference StandardBuffer writes it (float64 arrays, (N, 1) actions) trains."""
    tmp_path = reference_buffer
    log = ok("--env", "CartPole-v1", "--out_dir", tmp_path, "--max_timesteps", 50, "--eval_freq", 50,
             "--eval_episodes", 1)
    assert "q_loss=" in log
    assert np.load(tmp_path / "results" / "BCQ_CartPole-v1_0.npy").shape == (1,)


@pytest.mark.parametrize("args, message", [
    (["--env", "CartPole-v1"], "python main.py --generate_buffer --env CartPole-v1 --seed 0"),
    (["--env", "CartPole-v1", "--generate_buffer", "--seed", "3"], "python main.py --train_behavioral --env CartPole-v1 --seed 3"),
    (["--env", "NoSuchEnv-v0", "--train_behavioral"], "unknown env id 'NoSuchEnv-v0'"),
    (["--env", "Hopper-v3", "--train_behavioral"], "use Hopper-v5"),
    (["--env", "Pendulum-v1", "--BCQ_threshold", "0.5"], "--BCQ_threshold does not apply to Pendulum-v1"),
    (["--env", "CartPole-v1", "--phi", "0.1"], "--phi does not apply to CartPole-v1"),
    (["--env", "Pendulum-v1"], "python main.py --generate_buffer --env Pendulum-v1 --seed 0"),
    (["--env", "CartPole-v1", "--train_behavioral", "--batch_size", "0"], "--batch_size must be positive"),
    (["--env", "CartPole-v1", "--device", "cuda:7"], "--device cuda:7"),
    (["--env", "CartPole-v1", "--device", "nonsense"], "--device nonsense"),
    (["--env", "CartPole-v1", "--aug", "--targets", "swap"], "--aug means --targets mean"),
    (["--env", "CartPole-v1", "--train_behavioral", "--views", "clean"], "--views selects the offline algorithm"),
    (["--env", "MinAtar/Breakout-v1", "--aug_shift", "zero"], "--aug_shift zero: expected one of"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    result = run(*args, "--out_dir", tmp_path / "out")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_conflicting_stages_are_rejected(tmp_path):
    result = run("--train_behavioral", "--generate_buffer", "--out_dir", tmp_path / "out")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_installed_commands_are_the_scripts():
    """`pip install -e ".[all]"` (README) gives bcq-sqv = python main.py, and the plot and sweep commands."""
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.startswith("bcq-sqv")}
    assert scripts == {"bcq-sqv": "main:main", "bcq-sqv-plot": "plot:main", "bcq-sqv-sweep": "sweep:main"}
    installed = shutil.which("bcq-sqv", path=os.path.dirname(sys.executable)) or shutil.which("bcq-sqv")
    result = subprocess.run([installed or "bcq-sqv", "--env", "CartPole-v1", "--sqv", "--aug"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--sqv and --aug are two different offline algorithms" in result.stderr


def test_readme_documents_every_flag():
    sys.path.insert(0, ROOT)
    from main import build_parser
    readme = open(os.path.join(ROOT, "README.md")).read()
    flags = [s for action in build_parser()._actions for s in action.option_strings if s.startswith("--")]
    documented = lambda f: f"`{f}`" in readme or (f.startswith("--no-") and f"`--{f[5:]}`" in readme)
    missing = [f for f in flags if f != "--help" and not documented(f)]
    assert not missing, f"README lacks {missing}"


@pytest.mark.parametrize("command", ["plot", "sweep", "bench", "augmentation_check", "synthetic_log"])
def test_readme_documents_every_flag_of_the_other_commands(command, capsys):
    """Each command's options (from its --help) are named in README."""
    sys.path.insert(0, ROOT)
    module = __import__(command)
    with pytest.raises(SystemExit) as exit_:
        module.make_parser().parse_args(["--help"]) if command == "bench" else module.main(["--help"])
    assert exit_.value.code == 0
    options = capsys.readouterr().out.split("\noptions:\n", 1)[1]
    flags = {f for f in re.findall(r"^\s+(--[a-z_]+)", options, re.M) if f != "--help"}
    assert len(flags) >= 1
    readme = open(os.path.join(ROOT, "README.md")).read()
    missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){f}(?![\w-])", readme))
    assert not missing, f"README lacks {command}'s {missing}"
