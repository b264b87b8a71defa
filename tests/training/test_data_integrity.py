"""Buffers and models that can't be half-written or silently corrupted: manifests, checksums, a full disk."""
import os
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

from common.data import manifest
from common.data.buffers import FrameStackBuffer, ReplayBuffer
from common.errors import UserError

from tests.training.runs import OFFLINE, SETTING, files_under, run_main
from tests.training.runs import out  # noqa: F401 (the fixture)


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


def test_a_reference_model_without_checksums_loads_with_a_notice(out, capsys):
    """Models saved by other code (no checksum record) still load, tensors only, and say so."""
    os.remove(out / "models" / f"behavioral_{SETTING}_checksums.json")
    stdout = []
    code, lines = run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 300,
                            "--eval_episodes", 1], capsys, stdout)
    assert code == 0, lines
    assert f"has no behavioral_{SETTING}_checksums.json (saved elsewhere): loading its tensors without" in stdout[0]


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
