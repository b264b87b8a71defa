"""Runs that survive interruption, buffers that can't be half-written or silently corrupted,
numerical faults that stop training, and bad input that leaves nothing behind."""
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from common.data import manifest
from common.data.buffers import FrameStackBuffer, ReplayBuffer
from common.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTING = "CartPole-v1_0"
OFFLINE = ["--env", "CartPole-v1", "--max_timesteps", 1200, "--eval_freq", 400, "--checkpoint_freq", 100,
           "--eval_episodes", 2, "--batch_size", 32]


def main_py(*args, **popen):
    command = [sys.executable, os.path.join(ROOT, "main.py"), *map(str, args)]
    if popen:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def ok(*args):
    result = main_py(*args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, names in os.walk(path) for f in names)


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    """A tiny CartPole out_dir with a behavioral model and a 3000-transition buffer."""
    out = tmp_path_factory.mktemp("cartpole")
    flags = ["--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 3000, "--start_timesteps", 200,
             "--eval_freq", 1500, "--eval_episodes", 2, "--batch_size", 32]
    ok("--train_behavioral", *flags)
    ok("--generate_buffer", *flags)
    return out


@pytest.fixture
def out(cartpole, tmp_path):
    """A private copy of the CartPole out_dir."""
    target = tmp_path / "out"
    shutil.copytree(cartpole, target)
    return target


# --- bad input: one line, exit 2, no new file ----------------------------------------------------
def corrupt_model(out, checksums=True, flip=False):
    path = out / "models" / f"behavioral_{SETTING}_Q"
    data = bytearray(path.read_bytes())
    if flip:  # one weight's byte: the file still loads, with another value
        data[-800] ^= 0x40
    path.write_bytes(bytes(data) if flip else bytes(data[:100]))
    if not checksums:
        os.remove(out / "models" / f"behavioral_{SETTING}_checksums.json")


def wrong_shape_buffer(out):
    prefix = out / "buffers" / f"Default_{SETTING}"
    for suffix in ("state", "next_state"):
        np.save(f"{prefix}_{suffix}.npy", np.zeros((3000, 5), np.float32))
    os.remove(f"{prefix}_manifest.json")


def wrong_actions_buffer(out):
    prefix = out / "buffers" / f"Default_{SETTING}"
    np.save(f"{prefix}_action.npy", np.full((3000, 1), 4))
    os.remove(f"{prefix}_manifest.json")


def truncated_buffer(out):
    path = out / "buffers" / f"Default_{SETTING}_state.npy"
    path.write_bytes(path.read_bytes()[:-100])


def truncated_buffer_without_manifest(out):
    truncated_buffer(out)
    os.remove(out / "buffers" / f"Default_{SETTING}_manifest.json")


def flipped_byte(out):
    path = out / "buffers" / f"Default_{SETTING}_reward.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def interrupted_generation(out):
    manifest.begin(str(out / "buffers" / f"Default_{SETTING}"))


def readonly_parent(out):
    (out / "a_file").write_text("not a folder")


def d4rl_file(path, obs, actions):
    """A tiny D4RL-style HDF5 file (its last row a terminal, so every row is a transition)."""
    import h5py

    n = len(obs)
    with h5py.File(path, "w") as f:
        f["observations"], f["actions"] = obs, actions
        f["rewards"], f["terminals"] = np.ones(n, np.float32), np.eye(1, n, n - 1)[0]


def d4rl_action(value):
    def damage(out):
        d4rl_file(out / "actions.hdf5", np.zeros((40, 4), np.float32), np.where(np.arange(40) == 7, value, 1))
    return damage


def d4rl_nan_observation(out):
    obs = np.zeros((40, 4), np.float32)
    obs[5, 2] = np.nan
    d4rl_file(out / "nan.hdf5", obs, np.ones(40, np.int64))


def manifest_files(files):
    """Rewrite the buffer's manifest with another ``files`` entry (``flip``: and flip a byte of the states)."""
    def damage(out):
        import json

        path = out / "buffers" / f"Default_{SETTING}_manifest.json"
        record = json.loads(path.read_text())
        record["files"] = files if files != "list" else sorted(record["files"])
        path.write_text(json.dumps(record))
        state = out / "buffers" / f"Default_{SETTING}_state.npy"
        data = bytearray(state.read_bytes())
        data[-5] ^= 0xFF
        state.write_bytes(bytes(data))
    return damage


def array_ptr(out):
    prefix = out / "buffers" / f"Default_{SETTING}"
    np.save(f"{prefix}_ptr.npy", np.arange(3))
    os.remove(f"{prefix}_manifest.json")


def recommender_embeddings(items):
    """A tiny ItemRecommendation-v0 dataset (states of 5 items × 8, actions of 8) and ``items`` as embeddings."""
    def damage(out):
        d4rl_file(out / "recs.hdf5", np.zeros((40, 40), np.float32), np.full((40, 8), 0.1, np.float32))
        np.save(out / "items.npy", items)
    return damage


RECOMMENDER = ["--env", "ItemRecommendation-v0", "--dataset", "d4rl:{out}/recs.hdf5", "--item_embeddings",
               "{out}/items.npy", "--batch_size", 4]
REGENERATE = "regenerate it with: python main.py --generate_buffer --env CartPole-v1 --seed 0"
SEEDS = "lie in [0, 4294966295]: NumPy's seeds, less the evaluation seeds seed + 100 + k"
BAD = [
    ("unknown env", None, ["--env", "Nope-v0"], "unknown env id 'Nope-v0'"),
    ("Box env, discrete flag", None, ["--env", "Pendulum-v1", "--BCQ_threshold", 0.3], "does not apply to Pendulum-v1"),
    ("discrete env, Box flag", None, ["--env", "CartPole-v1", "--lmbda", 0.5], "does not apply to CartPole-v1"),
    ("two stages", None, ["--train_behavioral", "--generate_buffer"], "not allowed with argument"),
    ("no model", lambda out: shutil.rmtree(out / "models"), ["--generate_buffer", "--env", "CartPole-v1"],
     "python main.py --train_behavioral --env CartPole-v1 --seed 0"),
    ("no buffer", lambda out: shutil.rmtree(out / "buffers"), ["--env", "CartPole-v1"],
     "python main.py --generate_buffer --env CartPole-v1 --seed 0"),
    ("state shape", wrong_shape_buffer, ["--env", "CartPole-v1"], "another env"),
    ("action count", wrong_actions_buffer, ["--env", "CartPole-v1"], "holds action 4, but CartPole-v1 has 2 actions"),
    ("truncated buffer", truncated_buffer, ["--env", "CartPole-v1"], "is corrupted (its SHA-256"),
    ("truncated reference buffer", truncated_buffer_without_manifest, ["--env", "CartPole-v1"],
     "is truncated or corrupted"),
    ("flipped byte", flipped_byte, ["--env", "CartPole-v1"], "_reward.npy is corrupted"),
    ("half-written buffer", interrupted_generation, ["--env", "CartPole-v1"], "was not completely written"),
    ("truncated model", corrupt_model, ["--generate_buffer", "--env", "CartPole-v1"],
     f"model {{out}}/models/behavioral_{SETTING}_Q is corrupted (its SHA-256 differs from the one recorded when it "
     "was written); train one with: python main.py --train_behavioral --env CartPole-v1 --seed 0"),
    ("flipped byte in model", lambda out: corrupt_model(out, flip=True), ["--generate_buffer", "--env", "CartPole-v1"],
     f"behavioral_{SETTING}_Q is corrupted (its SHA-256 differs"),
    ("truncated model without checksums", lambda out: corrupt_model(out, checksums=False),
     ["--generate_buffer", "--env", "CartPole-v1"], "cannot be loaded for env CartPole-v1: the file is truncated"),
    ("zero steps", None, ["--env", "CartPole-v1", "--max_timesteps", 0], "--max_timesteps must be positive"),
    ("negative batch", None, ["--env", "CartPole-v1", "--batch_size", -4], "--batch_size must be positive"),
    ("zero eval_freq", None, ["--env", "CartPole-v1", "--eval_freq", 0], "--eval_freq must be positive"),
    ("threshold 1", None, ["--env", "CartPole-v1", "--BCQ_threshold", 1], "--BCQ_threshold must lie in [0, 1)"),
    ("threshold < 0", None, ["--env", "CartPole-v1", "--BCQ_threshold", -0.1], "--BCQ_threshold must lie in [0, 1)"),
    *((f"{flag} {value}", None, ["--env", "CartPole-v1", f"--{flag}", value], f"--{flag} must {text}, got {value}")
      for flag, value, text in (("max_timesteps", "nan", "be positive"), ("max_timesteps", "inf", "be positive"),
                                ("eval_freq", "nan", "be positive"), ("eval_freq", "inf", "be positive"),
                                ("target_update_freq", "nan", "be positive"), ("seed", -1, SEEDS),
                                ("seed", 99999999999, SEEDS), ("lr", "-1.0", "be positive"),
                                ("lr", "nan", "be positive"), ("adam_eps", "-1.0", "be positive"),
                                ("discount", "2.0", "lie in [0, 1]"), ("discount", "nan", "lie in [0, 1]"),
                                ("aug_noise", "-1.0", "be non-negative"))),
    ("batch > buffer", None, ["--env", "CartPole-v1", "--batch_size", 5000], "larger than the buffer (3000"),
    ("out_dir not writable", readonly_parent, ["--env", "CartPole-v1", "--out_dir", "{out}/a_file/sub"],
     "is a file, not a folder"),
    ("no CUDA", None, ["--env", "CartPole-v1", "--device", "cuda"], "CUDA is not available"),
    ("no CUDA for the buffer", None, ["--env", "CartPole-v1", "--buffer_device", "cuda"],
     "--buffer_device cuda: CUDA is not available on this machine; use --buffer_device cpu"),
    ("h-DQN on CartPole", None, ["--hdqn", "--env", "CartPole-v1"], "--hdqn takes the states of a one-hot"),
    ("SQIL on Pendulum", None, ["--sqil", "--env", "Pendulum-v1"], "--sqil needs discrete actions"),
    ("d4rl action -1", d4rl_action(-1), ["--env", "CartPole-v1", "--dataset", "d4rl:{out}/actions.hdf5"],
     "actions.hdf5: 'actions' holds action -1, but CartPole-v1 has 2 actions"),
    ("d4rl action 2", d4rl_action(2), ["--env", "CartPole-v1", "--dataset", "d4rl:{out}/actions.hdf5"],
     "actions.hdf5: 'actions' holds action 2, but CartPole-v1 has 2 actions"),
    ("d4rl NaN observation", d4rl_nan_observation, ["--env", "CartPole-v1", "--dataset", "d4rl:{out}/nan.hdf5"],
     "nan.hdf5: 'observations' holds NaN or inf (or values beyond float32's range) at row 5"),
    ("manifest files a list", manifest_files("list"), ["--env", "CartPole-v1"],
     f"_manifest.json is corrupted ('files' must map each file name to its SHA-256); {REGENERATE}"),
    ("manifest files empty", manifest_files({}), ["--env", "CartPole-v1"],
     f"_manifest.json is corrupted (it lists no checksum for Default_{SETTING}_state.npy); {REGENERATE}"),
    ("ptr array", array_ptr, ["--env", "CartPole-v1"],
     f"Default_{SETTING}_ptr.npy holds int64 values of shape (3,); expected one integer"),
    ("no item embeddings", recommender_embeddings(np.zeros((0, 8), np.float32)), RECOMMENDER,
     "--item_embeddings {out}/items.npy holds 0 items; give at least 5"),
    ("fewer items than k", recommender_embeddings(np.eye(3, 8, dtype=np.float32)), RECOMMENDER,
     "holds 3 items; give at least 5 (ItemRecommendation-v0 recommends 5 at a time)"),
    ("huge item embeddings", recommender_embeddings(np.full((10, 8), 1e38, np.float32)), RECOMMENDER,
     "--item_embeddings {out}/items.npy: every embedding must be finite and non-zero, with a norm finite"),
]


@pytest.mark.parametrize("name, damage, args, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input(out, capsys, name, damage, args, message):
    """In-process (the CLI's exit code and stderr are `main.main`'s; test_cli runs a few as subprocesses)."""
    if name.startswith("no CUDA") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if damage is not None:
        damage(out)
    before = files_under(out)
    args = [str(a).format(out=out) for a in args]
    if "--out_dir" not in args:
        args += ["--out_dir", str(out)]
    sys.path.insert(0, ROOT)
    import main
    try:
        code = main.main(args)
    except SystemExit as exit:  # argparse errors
        code = exit.code
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.strip().splitlines() if line]
    assert code == 2, stderr[-2000:]
    assert len(lines) == 1 and message.format(out=out) in lines[0] and "Traceback" not in stderr, stderr
    assert files_under(out) == before  # nothing new, nothing half-written (no results/*_config.json either)


def garbage_results(results):
    (results / "BCQ_CartPole-v1_0.npy").write_bytes(b"not an array")


PLOT_BAD = [
    ("not an npy", garbage_results, [], "BCQ_CartPole-v1_0.npy is not a readable .npy"),
    ("0-d array", lambda results: np.save(results / "BCQ_CartPole-v1_0.npy", np.array(5.0)), [],
     "BCQ_CartPole-v1_0.npy holds float64 values of shape (); expected a non-empty 1-D array of evaluation returns"),
    ("2-d array", lambda results: np.save(results / "SQV_CartPole-v1_1.npy", np.ones((2, 3))), [],
     "SQV_CartPole-v1_1.npy holds float64 values of shape (2, 3); expected a non-empty 1-D array of evaluation"),
    ("string array", lambda results: np.save(results / "behavioral_CartPole-v1_0.npy", np.array(["1", "2"])), [],
     "behavioral_CartPole-v1_0.npy holds <U1 values of shape (2,); expected a non-empty 1-D array of evaluation"),
    ("episodes 2-d", lambda results: np.save(results / "hDQN_CartPole-v1_0_episodes.npy", np.ones((2, 2))), [],
     "hDQN_CartPole-v1_0_episodes.npy holds float64 values of shape (2, 2); expected a 1-D array of episode"),
    ("out_dir a file", lambda results: (results.parent / "plots").write_text("a file"), ["--out_dir", "{root}/plots"],
     "--out_dir {root}/plots: {root}/plots is a file, not a folder; choose another --out_dir"),
]


@pytest.mark.parametrize("name, damage, args, message", PLOT_BAD, ids=[b[0] for b in PLOT_BAD])
def test_plot_bad_input(tmp_path, monkeypatch, capsys, name, damage, args, message):
    """plot.py on garbage results files and an --out_dir that is a file: one line, exit 2, nothing written."""
    results = tmp_path / "results"
    results.mkdir()
    for seed in (0, 1):  # a valid directory, then one damaged file
        np.save(results / f"BCQ_CartPole-v1_{seed}.npy", np.array([1.0, 2.0]))
        np.save(results / f"SQV_CartPole-v1_{seed}.npy", np.array([1.0, 3.0]))
    damage(results)
    before = files_under(tmp_path)
    args = [str(a).format(root=tmp_path) for a in args]
    if "--out_dir" not in args:
        args += ["--out_dir", str(tmp_path / "plots")]
    sys.path.insert(0, ROOT)
    import plot
    monkeypatch.setattr(sys, "argv", ["plot.py", "--results_dir", str(results), *args])
    code = plot.main()
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.strip().splitlines() if line]
    assert code == 2, stderr[-2000:]
    assert len(lines) == 1 and message.format(root=tmp_path) in lines[0] and "Traceback" not in stderr, stderr
    assert files_under(tmp_path) == before


# --- interruption and resume ---------------------------------------------------------------------
def wait_for_checkpoint(process, root, timeout=120):
    start = time.time()
    while not (os.path.isdir(root) and any(d.startswith("step_") for d in os.listdir(root))):
        assert process.poll() is None, process.communicate()
        assert time.time() - start < timeout, "no checkpoint appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("algo, how", [("BCQ", signal.SIGKILL), ("SQV", signal.SIGKILL), ("SQV", signal.SIGTERM)])
def test_killed_offline_run_resumes_to_identical_results(out, algo, how):
    """Killed at a random point after its first checkpoint, then resumed: the same results file, bit for bit."""
    extra = ["--sqv"] if algo == "SQV" else []
    ok(*OFFLINE, *extra, "--out_dir", out)
    results = out / "results" / f"{algo}_{SETTING}.npy"
    uninterrupted = results.read_bytes()
    assert not (out / "checkpoints").exists()  # a finished stage leaves no checkpoint behind
    os.remove(results)
    process = main_py(*OFFLINE, *extra, "--out_dir", out, popen=True)
    wait_for_checkpoint(process, out / "checkpoints" / f"{algo}_{SETTING}")
    time.sleep(random.Random(int(how)).uniform(0.0, 1.0))
    process.send_signal(how)
    _, stderr = process.communicate(timeout=120)
    if how == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM and "checkpoint saved to" in stderr, stderr
    else:
        assert process.returncode == -signal.SIGKILL
    resumed = ok(*OFFLINE, *extra, "--out_dir", out, "--resume")
    assert "resuming from" in resumed.stdout
    assert results.read_bytes() == uninterrupted


def test_behavioral_run_checkpoints_on_sigint_and_resumes(out):
    flags = ["--train_behavioral", "--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 4000,
             "--start_timesteps", 200, "--eval_freq", 1000, "--checkpoint_freq", 500, "--eval_episodes", 1]
    process = main_py(*flags, popen=True)
    wait_for_checkpoint(process, out / "checkpoints" / f"behavioral_{SETTING}")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT and "continue with the same command plus --resume" in stderr
    checkpoint = sorted((out / "checkpoints" / f"behavioral_{SETTING}").iterdir())[-1]
    assert (checkpoint / "state.pt").is_file() and (checkpoint / "buffer_state.npy").is_file()
    resumed = ok(*flags, "--resume")
    assert "resuming from" in resumed.stdout
    assert np.load(out / "results" / f"behavioral_{SETTING}.npy").shape == (4,)
    assert not (out / "checkpoints").exists()


def test_a_run_without_resume_drops_an_earlier_runs_checkpoints(out):
    """Else a later --resume could pick the earlier run's newer step over this run's own checkpoints."""
    stale = out / "checkpoints" / f"BCQ_{SETTING}" / "step_999999"
    stale.mkdir(parents=True)
    (stale / "state.pt").write_bytes(b"from an earlier run with other flags")
    result = ok(*OFFLINE, "--out_dir", out)
    assert "starting over: removed the checkpoints of an earlier run" in result.stdout
    assert not stale.exists() and np.load(out / "results" / f"BCQ_{SETTING}.npy").shape == (3,)


# --- numerical faults ----------------------------------------------------------------------------
def test_non_finite_loss_stops_training_and_names_the_checkpoint(out):
    result = main_py("--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 3000, "--eval_freq", 1000,
                     "--checkpoint_freq", 50, "--log_freq", 100, "--eval_episodes", 1, "--lr", 1e30)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "became non-finite" in message and "at iteration" in message and "loss" in message
    assert "checkpoint" in message


# --- manifests -----------------------------------------------------------------------------------
def fake_run(env="PongNoFrameskip-v4", shape=(4, 6, 6), actions=6):
    cfg = SimpleNamespace(env=env, command="python main.py --generate_buffer")
    info = SimpleNamespace(kind="atari", state_shape=shape, action_space=gym.spaces.Discrete(actions))
    return cfg, info


def atari_buffer(n=25):
    buf = FrameStackBuffer((4, 6, 6), n, 4, "cpu", np.random.default_rng(0))
    for k in range(n):
        buf.add(np.full((4, 6, 6), k, np.uint8), k % 6, None, 1.0, 1.0, k % 10 == 0)
    return buf


def test_manifest_round_trip_and_mismatch(tmp_path):
    prefix = str(tmp_path / "Default_Pong")
    buf = atari_buffer()
    cfg, info = fake_run()
    manifest.begin(prefix)
    assert os.path.exists(f"{prefix}_incomplete")
    path = manifest.finish(prefix, buf.save(prefix, chunk=10), cfg, info, buf)
    assert not os.path.exists(f"{prefix}_incomplete")
    import json
    record = json.load(open(path))
    assert record["size"] == 25 and record["state_shape"] == [4, 6, 6] and record["state_dtype"] == "uint8"
    assert record["action_space"] == {"type": "Discrete", "n": 6} and record["format_version"] == 1
    assert sorted(record["files"]) == sorted(os.path.basename(p) for p in
                                              [f"{prefix}_{s}.npy" for s in ("action", "reward", "not_done",
                                               "first_timestep", "replay_info", "state_10", "state_20", "state_26")])
    manifest.verify(prefix, cfg, info, "regen")  # passes
    with pytest.raises(UserError, match="action_space"):
        manifest.verify(prefix, *fake_run(actions=4), "regen")
    with pytest.raises(UserError, match="env"):
        manifest.verify(prefix, *fake_run(env="BreakoutNoFrameskip-v4"), "regen")


def test_corrupted_atari_chunks_are_refused(tmp_path):
    prefix = str(tmp_path / "Default_Pong")
    buf, (cfg, info) = atari_buffer(), fake_run()
    manifest.begin(prefix)
    manifest.finish(prefix, buf.save(prefix, chunk=10), cfg, info, buf)
    chunk = f"{prefix}_state_20.npy"
    original = open(chunk, "rb").read()
    flipped = bytearray(original)
    flipped[-7] ^= 1
    open(chunk, "wb").write(bytes(flipped))
    with pytest.raises(UserError, match="state_20.npy is corrupted"):
        manifest.verify(prefix, cfg, info, "regen")
    open(chunk, "wb").write(original[:-36])  # a truncated chunk, without the manifest to catch it
    os.remove(f"{prefix}_manifest.json")
    loaded = FrameStackBuffer((4, 6, 6), 1, 4, "cpu", np.random.default_rng(0))
    with pytest.raises(UserError, match="state_20.npy is truncated or corrupted"):
        loaded.load(prefix, "regen")


def test_reference_buffer_without_manifest_loads_with_a_notice(tmp_path, capsys):
    prefix = str(tmp_path / "Default_CartPole-v1_0")
    buf = ReplayBuffer((4,), 10, 2, "cpu", np.random.default_rng(0))
    for k in range(10):
        buf.add(np.full(4, k), k % 2, np.full(4, k + 1), 1.0, 1.0)
    buf.save(prefix)
    cfg, info = fake_run("CartPole-v1", (4,), 2)
    manifest.verify(prefix, cfg, info, "regen")
    assert "has no manifest (reference format)" in capsys.readouterr().out
    loaded = ReplayBuffer((4,), 1, 2, "cpu", np.random.default_rng(0))
    loaded.load(prefix)
    assert loaded.size == 10


def test_free_space_is_checked_before_writing(tmp_path):
    with pytest.raises(UserError, match=r"needs about 1000000000.00 GB but .* GB free"):
        manifest.check_free_space(str(tmp_path / "buffers"), 10**18, "a buffer")
    manifest.check_free_space(str(tmp_path / "buffers"), 1000, "a buffer")


# --- hostile runs: divergence, damaged models and checkpoints, a full disk, two runs at once -------
def run_main(args, capsys, stdout=None):
    """``main.main(args)`` in this process: (exit code, its stderr lines); its stdout goes to the list
    ``stdout`` where one is given."""
    sys.path.insert(0, ROOT)
    import main
    code = main.main([str(a) for a in args])
    captured = capsys.readouterr()
    if stdout is not None:
        stdout.append(captured.out)
    return code, [line for line in captured.err.strip().splitlines() if line]


def checkpoint_of(out, algo):
    root = out / "checkpoints" / f"{algo}_{SETTING}"
    steps = [p for p in root.iterdir() if p.name.startswith("step_")] if root.exists() else []  # no .tmp folders
    return sorted(steps, key=lambda p: int(p.name.rsplit("_", 1)[1]))


@pytest.mark.parametrize("algo", ["BCQ", "SQV"])
def test_a_diverging_run_stops_with_one_line(out, capsys, algo):
    """The issue's attack, lr 1e6 with a checkpoint after every update: one line, exit 1, and no
    checkpoint of the diverged weights (Q explodes in the first update, before any checkpoint)."""
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--lr", 1e6, "--checkpoint_freq", 1, "--log_freq", 1,
                            *(["--sqv"] if algo == "SQV" else [])], capsys)
    assert code == 1 and len(lines) == 1 and "training stopped: it diverged by iteration 1" in lines[0], lines
    assert "no checkpoint was saved before it" in lines[0] and not checkpoint_of(out, algo)


def test_weights_are_checked_before_a_checkpoint_not_only_the_loss(out, capsys, monkeypatch):
    """An update whose loss was finite but which wrote a NaN weight (the old guard's blind spot): the
    checkpoint due right after it is not written, and the one named as the last good holds finite weights."""
    from discrete_SQV.dqn import DQN
    real = DQN.train

    def poisoned(self, buffer):
        real(self, buffer)
        if self.iterations == 100:
            with torch.no_grad():
                next(self.Q.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(DQN, "train", poisoned)
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--checkpoint_freq", 50], capsys)
    good = out / "checkpoints" / f"BCQ_{SETTING}" / "step_50"
    assert code == 1 and len(lines) == 1, lines
    assert (f"the weights of Q became non-finite (NaN or inf) by iteration 100, though every loss was finite; the "
            f"last good checkpoint is {good}" in lines[0]), lines
    assert checkpoint_of(out, "BCQ") == [good]
    parts = torch.load(good / "state.pt", weights_only=True)["agent"]["parts"]
    assert all(torch.isfinite(t).all() for t in parts["Q"].values())


def test_finite_divergence_of_behavioral_dqn_is_caught(tmp_path, capsys):
    """q_loss 1.7e13 and mean Q 2e6 used to exit 0: a mean Q beyond 10·max|r|/(1−γ) stops the run."""
    code, lines = run_main(["--train_behavioral", "--env", "CartPole-v1", "--out_dir", tmp_path, "--max_timesteps",
                            3000, "--start_timesteps", 200, "--eval_freq", 1000, "--eval_episodes", 1, "--lr", 1e6],
                           capsys)
    assert code == 1 and len(lines) == 1 and "training stopped: it diverged by iteration" in lines[0], lines
    assert "beyond 10× the largest return the rewards allow, 100" in lines[0]


def test_a_reference_model_without_checksums_loads_with_a_notice(out, capsys):
    """Models saved by other code (no checksum record) still load, tensors only, and say so."""
    os.remove(out / "models" / f"behavioral_{SETTING}_checksums.json")
    stdout = []
    code, lines = run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 300,
                            "--eval_episodes", 1], capsys, stdout)
    assert code == 0, lines
    assert f"has no behavioral_{SETTING}_checksums.json (saved elsewhere): loading its tensors without" in stdout[0]


def interrupted_offline_run(out):
    """An offline run stopped by SIGTERM after its first checkpoint: the checkpoint folder."""
    process = main_py(*OFFLINE, "--out_dir", out, popen=True)
    wait_for_checkpoint(process, out / "checkpoints" / f"BCQ_{SETTING}")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    return checkpoint_of(out, "BCQ")[-1]


def flip_byte(path, offset=-5):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (lambda step: flip_byte(step / "state.pt"), "state.pt is corrupted (its SHA-256 differs"),
    (lambda step: flip_byte(step / "checksums.json", 20), "checksums.json is unreadable or damaged"),
    (lambda step: os.remove(step / "checksums.json"), "has no checksums.json (an older version wrote it, or it was"),
])
def test_a_damaged_checkpoint_is_refused_not_resumed(out, capsys, damage, message):
    step = interrupted_offline_run(out)
    damage(step)
    before = {path: (out / path).read_bytes() for path in files_under(out)}
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--resume"], capsys)
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert "run the same command without --resume to start over (only the newest checkpoint is kept)" in lines[0]
    assert {path: (out / path).read_bytes() for path in files_under(out)} == before


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(out, capsys, monkeypatch):
    """ENOSPC while the second checkpoint is written: one line naming the intact first checkpoint and
    --resume; no temporary folder left; resuming (disk freed) gives the uninterrupted run's results."""
    import errno

    from common.training import checkpoint
    code, _ = run_main([*OFFLINE, "--out_dir", out, "--max_timesteps", 400], capsys)
    results = out / "results" / f"BCQ_{SETTING}.npy"
    uninterrupted = results.read_bytes()
    real, calls = checkpoint.atomic_torch_save, []

    def full_disk_at_the_second(path, obj):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, obj)

    monkeypatch.setattr(checkpoint, "atomic_torch_save", full_disk_at_the_second)
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--max_timesteps", 400], capsys)
    first = out / "checkpoints" / f"BCQ_{SETTING}" / "step_100"
    assert code == 1 and len(lines) == 1, lines
    assert (f"the disk is full: checkpoint step 200 could not be written" in lines[0]
            and f"the checkpoint {first} is intact: free some space, then continue with the same command plus "
                "--resume" in lines[0]), lines
    assert checkpoint_of(out, "BCQ") == [first] and not any(".tmp" in p for p in files_under(out))
    monkeypatch.setattr(checkpoint, "atomic_torch_save", real)
    code, _ = run_main([*OFFLINE, "--out_dir", out, "--max_timesteps", 400, "--resume"], capsys)
    assert code == 0 and results.read_bytes() == uninterrupted


def test_a_full_disk_while_writing_a_buffer_leaves_it_refused_and_the_config_untouched(out, capsys, monkeypatch):
    import errno

    from common.data import buffers
    config = out / "results" / f"buffer_Default_{SETTING}_config.json"
    before = config.read_bytes()
    real = buffers.atomic_save_npy

    def full(path, array):
        if path.endswith("_reward.npy"):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(path, array)

    monkeypatch.setattr(buffers, "atomic_save_npy", full)
    code, lines = run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 500,
                            "--eval_episodes", 1], capsys)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: the disk is full (No space left on device: "), lines
    assert "_reward.npy); nothing was left half-written" in lines[0]
    assert config.read_bytes() == before and not any(".tmp" in p for p in files_under(out))
    monkeypatch.setattr(buffers, "atomic_save_npy", real)
    code, lines = run_main([*OFFLINE, "--out_dir", out], capsys)
    assert code == 2 and "was not completely written (its generation was interrupted)" in lines[0]


def test_a_killed_regeneration_keeps_the_old_buffer_s_config(out, capsys, monkeypatch):
    """The config of a buffer is written once the buffer has landed, never beside the old one."""
    from common.data import manifest
    config = out / "results" / f"buffer_Default_{SETTING}_config.json"
    before = config.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(manifest, "finish", killed)
    assert run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 500,
                     "--eval_episodes", 1, "--seed", 0], capsys)[0] == 130
    assert config.read_bytes() == before


def test_generate_buffer_refuses_an_interrupted_behavioral_training(out, capsys):
    step = out / "checkpoints" / f"behavioral_{SETTING}" / "step_500"
    step.mkdir(parents=True)
    (step / "state.pt").write_bytes(b"a checkpoint")
    before = files_under(out)
    code, lines = run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert (f"the behavioral training of {SETTING} was interrupted (its checkpoint {step} is still there)" in lines[0]
            and "--train_behavioral --env CartPole-v1 --seed 0" in lines[0] and "--resume" in lines[0]), lines
    assert files_under(out) == before


def test_two_runs_of_one_setting_cannot_write_at_once(out, capsys):
    """A second run of a running setting and stage stops at once and touches nothing; another algorithm
    reads the same buffer beside it; regenerating that buffer meanwhile is refused; a killed run's
    lock is gone with it, and wall_seconds goes on across the resume."""
    long = [*OFFLINE, "--max_timesteps", 100000, "--checkpoint_freq", 200, "--log_freq", 100]
    process = main_py(*long, "--out_dir", out, popen=True)
    try:
        wait_for_checkpoint(process, out / "checkpoints" / f"BCQ_{SETTING}")
        config = out / "results" / f"BCQ_{SETTING}_config.json"
        live = config.read_bytes()
        code, lines = run_main([*long, "--out_dir", out, "--batch_size", 16], capsys)
        assert code == 2 and len(lines) == 1, lines
        assert f"the BCQ stage of {SETTING} in {out} is in use by another run now (pid {process.pid}:" in lines[0]
        assert config.read_bytes() == live and checkpoint_of(out, "BCQ")  # its config and checkpoint untouched
        assert run_main([*OFFLINE, "--sqv", "--out_dir", out, "--max_timesteps", 100], capsys)[0] == 0
        code, lines = run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out], capsys)
        assert code == 2 and f"the buffer_Default stage of {SETTING} in {out} is in use by another run" in lines[0]
    finally:
        process.kill()
        process.communicate(timeout=60)
    step = checkpoint_of(out, "BCQ")[-1]
    elapsed = torch.load(step / "state.pt", weights_only=True)["elapsed"]
    resumed = ok(*long[:-4], "--out_dir", out, "--resume", "--max_timesteps", int(step.name[5:]) + 200,
                 "--checkpoint_freq", 200, "--log_freq", 100)
    assert "resuming from" in resumed.stdout
    assert not [p for p in os.listdir(out) if p.endswith(".lock")]
    import csv
    with open(out / "results" / f"BCQ_{SETTING}_train.csv") as f:
        rows = [(int(row["step"]), float(row["wall_seconds"])) for row in csv.DictReader(f)]
    after = [seconds for step_, seconds in rows if step_ > int(step.name[5:])]
    assert after and min(after) >= elapsed > 0  # the clock goes on from the checkpoint, not from zero
