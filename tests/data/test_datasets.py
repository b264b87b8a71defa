"""Datasets in the field's formats: DQN Replay (Dopamine), D4RL HDF5 and Minari, on small files the
tests write themselves, checked transition by transition against hand-built expectations."""
import gzip
import os

import numpy as np
import pytest
import torch

from common.data.buffers import FrameStackBuffer
from common.data.datasets import convert_dqn_replay, read_d4rl
from common.errors import UserError

STACK = 4


class Dopamine:
    """Dopamine's OutOfGraphReplayBuffer.add, as the DQN Replay Dataset was written: a circular
    store; before the first frame of an episode (at the very start and after every terminal) it adds
    stack - 1 all-zero transitions (action 0, reward 0, not terminal)."""

    def __init__(self, capacity, shape):
        self.obs = np.zeros((capacity, *shape), np.uint8)
        self.action = np.zeros(capacity, np.int32)
        self.reward = np.zeros(capacity, np.float32)
        self.terminal = np.zeros(capacity, np.uint8)
        self.add_count = 0

    def _put(self, obs, action, reward, terminal):
        i = self.add_count % len(self.obs)
        self.obs[i], self.action[i], self.reward[i], self.terminal[i] = obs, action, reward, terminal
        self.add_count += 1

    def add(self, obs, action, reward, terminal):
        if self.add_count == 0 or self.terminal[(self.add_count - 1) % len(self.obs)] == 1:
            for _ in range(STACK - 1):
                self._put(np.zeros_like(obs), 0, 0.0, 0)
        self._put(obs, action, reward, terminal)

    def invalid_range(self):
        cursor = self.add_count % len(self.obs)
        return np.array([(cursor - 1 + i) % len(self.obs) for i in range(STACK + 1)])

    def is_valid(self, index):
        """is_valid_transition with update horizon 1, written out as Dopamine does, one index at a time."""
        capacity = len(self.obs)
        full = self.add_count >= capacity
        cursor = self.add_count % capacity
        if not full and (index >= cursor - 1 or index < STACK - 1):
            return False
        if index in set(self.invalid_range().tolist()):
            return False
        return not any(self.terminal[(index - back) % capacity] for back in range(1, STACK))

    def stack(self, index):  # newest first, as this project's stacks are
        return np.stack([self.obs[(index - k) % len(self.obs)] for k in range(STACK)])

    def save(self, directory, ckpt):
        os.makedirs(directory, exist_ok=True)
        arrays = {"$store$_observation": self.obs, "$store$_action": self.action, "$store$_reward": self.reward,
                  "$store$_terminal": self.terminal, "add_count": np.array(self.add_count),
                  "invalid_range": self.invalid_range()}
        for name, array in arrays.items():
            with gzip.open(os.path.join(directory, f"{name}_ckpt.{ckpt}.gz"), "wb") as f:
                np.save(f, array, allow_pickle=False)


def fill(store, episodes, rng, first_id=1):
    """Episodes of the given lengths (the last may be cut: `None` ends without a terminal); every frame
    is a constant image of a unique id, so a stack tells which frames it holds."""
    frame_id = first_id
    for length, terminal_at_end in episodes:
        for t in range(length):
            end = terminal_at_end and t == length - 1
            store.add(np.full(store.obs.shape[1:], frame_id % 256, np.uint8), int(rng.integers(6)),
                      float(rng.choice([-3.0, 0.0, 1.0, 2.0])), int(end))
            frame_id += 1
    return frame_id


def check_converted(tmp_path, stores, ckpts):
    """Every transition Dopamine would sample, and only those, with the same s, a, r, s', terminal."""
    directory = tmp_path / "replay_logs"
    for store, ckpt in zip(stores, ckpts):
        store.save(directory, ckpt)
    prefix = str(tmp_path / "buffers" / "converted")
    os.makedirs(tmp_path / "buffers")
    result = convert_dqn_replay(str(directory), ckpts, prefix, (6, 6), STACK, block_rows=5, chunk=7)
    buf = FrameStackBuffer((STACK, 6, 6), 1, 8, torch.device("cpu"), np.random.default_rng(0))
    buf.load(prefix)
    assert buf.size == result["size"]
    rows = np.arange(buf.size)
    sampleable = rows[buf.sampleable(rows)]
    expected, offset = [], 0
    for store in stores:
        capacity = len(store.obs)
        order = (np.roll(np.arange(capacity), -(store.add_count % capacity)) if store.add_count >= capacity
                 else np.arange(store.add_count))
        for row, index in enumerate(order):
            if store.is_valid(index):
                expected.append((offset + row, store, index))
        offset += len(order)
    assert sampleable.tolist() == [row for row, _, _ in expected]
    s, s2 = buf.stacks(sampleable)
    for k, (row, store, index) in enumerate(expected):
        np.testing.assert_array_equal(s[k].numpy(), store.stack(index))
        np.testing.assert_array_equal(s2[k].numpy(), store.stack((index + 1) % len(store.obs)))
        assert buf.action[row, 0] == store.action[index]
        assert buf.reward[row, 0] == np.clip(store.reward[index], -1, 1)
        assert buf.not_done[row, 0] == 1 - store.terminal[index]
    return buf, expected


def test_dqn_replay_wrapped_checkpoint_matches_dopamine_transition_by_transition(tmp_path):
    rng = np.random.default_rng(0)
    store = Dopamine(40, (6, 6))
    # wraps around: the cursor lands inside an episode; short episodes put terminals inside stacks
    fill(store, [(5, True), (2, True), (9, True), (1, True), (12, True), (3, True), (8, False)], rng)
    assert store.add_count > 40
    _, expected = check_converted(tmp_path, [store], [3])
    terminals = [e for e in expected if e[1].terminal[e[2]]]
    assert terminals and len(expected) > 15


def test_dqn_replay_two_checkpoints_one_unfilled(tmp_path):
    rng = np.random.default_rng(1)
    full, partial = Dopamine(30, (6, 6)), Dopamine(30, (6, 6))
    next_id = fill(full, [(7, True), (1, True), (11, True), (9, True), (6, False)], rng)
    fill(partial, [(4, True), (6, False)], rng, next_id)
    assert full.add_count >= 30 > partial.add_count
    check_converted(tmp_path, [full, partial], [49, 50])


def test_dqn_replay_bad_files_are_one_line_errors(tmp_path):
    store = Dopamine(20, (6, 6))
    fill(store, [(6, True), (5, False)], np.random.default_rng(2))
    directory = tmp_path / "logs"
    store.save(directory, 1)
    prefix = str(tmp_path / "out")
    with pytest.raises(UserError, match=r"_ckpt\.2\.gz is missing"):
        convert_dqn_replay(str(directory), [2], prefix, (6, 6), STACK)
    with pytest.raises(UserError, match=r"holds uint8 \(20, 6, 6\); expected uint8 \(20, 84, 84\)"):
        convert_dqn_replay(str(directory), [1], prefix, (84, 84), STACK)
    path = directory / "$store$_observation_ckpt.1.gz"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # truncated gzip
    with pytest.raises(UserError, match="truncated or corrupted"):
        convert_dqn_replay(str(directory), [1], prefix, (6, 6), STACK)
    with gzip.open(directory / "$store$_action_ckpt.1.gz", "wb") as f:
        np.save(f, np.zeros((20, 2), np.int32))
    with pytest.raises(UserError, match=r"has shape \(20, 2\); expected \(20,\)"):
        convert_dqn_replay(str(directory), [1], prefix, (6, 6), STACK)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("out") or p.startswith(".out")]  # nothing half-written


def test_dqn_replay_through_the_cli_converts_once_then_memory_maps(tmp_path, capsys):
    import main

    store = Dopamine(300, (84, 84))
    fill(store, [(40, True), (70, True), (30, True), (200, False)], np.random.default_rng(3))
    store.save(tmp_path / "logs", 7)
    flags = ["--env", "PongNoFrameskip-v4", "--dataset", f"dqn_replay:{tmp_path / 'logs'}", "--ckpts", "7",
             "--out_dir", str(tmp_path), "--max_timesteps", "4", "--eval_freq", "4", "--eval_episodes", "1",
             "--batch_size", "8", "--max_episode_timesteps", "20", "--device", "cpu"]
    assert main.main(flags) == 0
    assert "converting DQN Replay" in capsys.readouterr().out
    assert main.main([*flags, "--sqv"]) == 0
    out = capsys.readouterr().out
    assert "using the converted DQN Replay buffer" in out and "converting" not in out
    assert (tmp_path / "results" / "SQV_PongNoFrameskip-v4_0.npy").is_file()
    assert main.main(["--env", "PongNoFrameskip-v4", "--dataset", "dqn_replay:x", "--out_dir", str(tmp_path)]) == 2
    assert "needs --ckpts" in capsys.readouterr().err


def write_d4rl(path, with_next=False, drop=None):
    import h5py

    obs = np.arange(24, dtype=np.float32).reshape(8, 3)
    data = {"observations": obs, "actions": np.linspace(-1, 1, 8, dtype=np.float32).reshape(8, 1),
            "rewards": np.arange(8, dtype=np.float32), "terminals": np.array([0, 0, 1, 0, 0, 0, 0, 0]),
            "timeouts": np.array([0, 0, 0, 0, 1, 0, 0, 0])}
    if with_next:
        data["next_observations"] = obs + 100
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            if key != drop:
                f[key] = value


def test_d4rl_timeouts_are_not_terminals_and_episode_ends_drop_transitions(tmp_path):
    write_d4rl(tmp_path / "d.hdf5")
    s, a, s2, r, not_done = read_d4rl(str(tmp_path / "d.hdf5"))
    # rows 0-2 (terminal at 2), 3-4 (timeout at 4: dropped, no s'), 5-7 (the file ends: 7 dropped)
    np.testing.assert_array_equal(r, [0, 1, 2, 3, 5, 6])
    np.testing.assert_array_equal(not_done, [1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(s[:, 0], [0, 3, 6, 9, 15, 18])
    np.testing.assert_array_equal(s2[[0, 1, 3, 4, 5], 0], [3, 6, 12, 18, 21])  # the next row of the same episode
    write_d4rl(tmp_path / "n.hdf5", with_next=True)
    s, a, s2, r, not_done = read_d4rl(str(tmp_path / "n.hdf5"))
    assert len(r) == 8 and not_done[4] == 1 and not_done[2] == 0  # the timeout row has its s' and bootstraps
    np.testing.assert_array_equal(s2, s + 100)
    write_d4rl(tmp_path / "bad.hdf5", drop="rewards")
    with pytest.raises(UserError, match="has no 'rewards' dataset"):
        read_d4rl(str(tmp_path / "bad.hdf5"))
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="cannot be read as HDF5"):
        read_d4rl(str(tmp_path / "junk.hdf5"))


def test_fill_replaces_a_buffer_s_rows_or_refuses_a_misfit(tmp_path):
    from types import SimpleNamespace

    import gymnasium as gym

    from common.data.buffers import ReplayBuffer
    from common.data.datasets import fill
    write_d4rl(tmp_path / "d.hdf5")
    run = SimpleNamespace(dataset=f"d4rl:{tmp_path / 'd.hdf5'}", env="E")
    box = SimpleNamespace(action_space=gym.spaces.Box(-1, 1, (1,)))
    two = SimpleNamespace(action_space=gym.spaces.Discrete(2))
    buf = ReplayBuffer((3,), 100, 2, "cpu", np.random.default_rng(0), action_shape=(1,), action_dtype=np.float32)
    assert fill(buf, run, box) == f"d4rl:{tmp_path / 'd.hdf5'}"
    assert (buf.capacity, buf.size, buf.ptr) == (6, 6, 0)
    for column, expected in zip(buf.columns(), read_d4rl(str(tmp_path / "d.hdf5"))):
        np.testing.assert_array_equal(column.reshape(expected.shape), expected)
    misfits = [(FrameStackBuffer((STACK, 6, 6), 1, 2, "cpu", np.random.default_rng(0)), box, "uses Atari frame stacks"),
               (ReplayBuffer((4,), 1, 2, "cpu", np.random.default_rng(0)), box, r"observations of shape \(3,\)"),
               (ReplayBuffer((3,), 1, 2, "cpu", np.random.default_rng(0), action_shape=(2,), action_dtype=np.float32),
                box, r"actions of shape \(1,\)"),
               (ReplayBuffer((3,), 1, 2, "cpu", np.random.default_rng(0)), two, "has continuous actions")]
    for buffer, info, message in misfits:
        with pytest.raises(UserError, match=message):
            fill(buffer, run, info)


def test_d4rl_trains_continuous_bcq_through_the_cli(tmp_path, capsys):
    import main

    write_d4rl(tmp_path / "pendulum.hdf5")
    flags = ["--env", "Pendulum-v1", "--dataset", f"d4rl:{tmp_path / 'pendulum.hdf5'}", "--out_dir", str(tmp_path),
             "--max_timesteps", "3", "--eval_freq", "3", "--eval_episodes", "1", "--batch_size", "4"]
    assert main.main(flags) == 0
    assert (tmp_path / "results" / "BCQ_Pendulum-v1_0.npy").is_file()
    assert main.main(["--env", "Hopper-v5", *flags[2:]]) == 2
    assert "observations of shape (3,)" in capsys.readouterr().err


def test_minari_round_trip_export_load_train(tmp_path, monkeypatch, capsys):
    import main
    from common.data.datasets import read_minari
    from common.training.paths import buffer_prefix

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    flags = ["--env", "CartPole-v1", "--out_dir", str(tmp_path), "--max_timesteps", "300", "--start_timesteps", "100",
             "--eval_freq", "300", "--eval_episodes", "1", "--num_envs", "3"]
    assert main.main(["--train_behavioral", *flags]) == 0
    assert main.main(["--generate_buffer", *flags]) == 0
    assert main.main(["--export_minari", "cartpole/ours-v0", *flags]) == 0
    for bad in ("bad id", "CartPole", "cartpole/ours-v0"):  # malformed, no version, existing: refused, nothing left
        before = sorted(p.name for p in (tmp_path / "minari").rglob("*"))
        assert main.main(["--export_minari", bad, *flags]) == 2
        assert f"--export_minari {bad}: " in capsys.readouterr().err
        assert sorted(p.name for p in (tmp_path / "minari").rglob("*")) == before
    s, a, s2, r, not_done = read_minari("cartpole/ours-v0")
    prefix = str(tmp_path / "buffers" / "Default_CartPole-v1_0")
    assert buffer_prefix(main.resolve(main.parse_args(flags), "CartPole-v1")[0]) == prefix
    ours = {name: np.load(f"{prefix}_{name}.npy") for name in ("state", "action", "next_state", "reward", "not_done")}
    # the same transitions, as a set (Minari stores episodes; ours are contiguous per episode too)
    key = lambda *cols: sorted(map(tuple, np.concatenate([c.reshape(len(c), -1) for c in cols], 1).tolist()))
    assert key(s, a, s2, r, not_done) == key(*(ours[n] for n in ("state", "action", "next_state", "reward", "not_done")))
    assert main.main(["--env", "CartPole-v1", "--dataset", "minari:cartpole/ours-v0", "--out_dir", str(tmp_path),
                      "--max_timesteps", "3", "--eval_freq", "3", "--eval_episodes", "1", "--batch_size", "8"]) == 0
    assert main.main(["--env", "CartPole-v1", "--dataset", "minari:nope/none-v0", "--out_dir", str(tmp_path),
                      "--max_timesteps", "3"]) == 2
