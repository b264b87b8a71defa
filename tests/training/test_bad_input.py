"""Bad input: one line, exit 2, and nothing new or half-written (main.py and plot.py)."""
import os
import shutil
import sys

import numpy as np
import pytest
import torch

from common.data import manifest

from tests.training.runs import ROOT, SETTING, files_under
from tests.training.runs import out  # noqa: F401 (the fixture)


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
     "was written); train it again with: python main.py --train_behavioral --env CartPole-v1 --seed 0"),
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
    ("nan returns", lambda results: np.save(results / "SQV_CartPole-v1_0.npy", np.array([1.0, np.nan])), [],
     "SQV_CartPole-v1_0.npy holds non-finite values (nan or inf)"),
    ("inf returns", lambda results: np.save(results / "behavioral_CartPole-v1_0.npy", np.array([np.inf])), [],
     "behavioral_CartPole-v1_0.npy holds non-finite values (nan or inf)"),
    ("eval log garbage row", lambda results: (results / "BCQ_CartPole-v1_1_eval.csv").write_text(
        "step,mean_return\n1,1.0\ngarbage,row\n"), [], "BCQ_CartPole-v1_1_eval.csv is not a CSV with whole-number steps"),
    ("eval log without header", lambda results: (results / "BCQ_CartPole-v1_1_eval.csv").write_text("1,1.0\n2,2.0\n"),
     [], "BCQ_CartPole-v1_1_eval.csv is not a CSV with whole-number steps"),
    ("eval log binary", lambda results: (results / "SQV_CartPole-v1_0_eval.csv").write_bytes(b"\xff\xfe\x00junk"), [],
     "SQV_CartPole-v1_0_eval.csv cannot be read"),
    ("eval log steps repeat", lambda results: (results / "SQV_CartPole-v1_0_eval.csv").write_text(
        "step,mean_return\n2,1.0\n2,3.0\n"), [], "SQV_CartPole-v1_0_eval.csv: its steps do not increase"),
    ("out_dir unwritable", lambda results: None, ["--out_dir", "/proc/no_plots_here"],
     "cannot write the report to /proc/no_plots_here"),
    ("against, out_dir unwritable", lambda results: shutil.copytree(results, results.parent / "other"),
     ["--against", "{root}/other", "--out_dir", "/proc/no_plots_here"], "cannot write the comparison to /proc/no_plots_here"),
    ("against itself", lambda results: None, ["--against", "{root}/results"],
     "--against {root}/results is --results_dir itself"),
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
