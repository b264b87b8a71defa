"""Frame stacks, the two edge cases the reference gets wrong, and the reference file formats."""
import glob
import json
import os
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from common.data import manifest
from common.data.buffers import FrameStackBuffer, ReplayBuffer, stack_mask
from common.data.chunks import chunk_ranges, stored_chunks

H = 4  # frames per state


def frame(value):
    """A 2×2 state whose newest frame is filled with ``value`` (older frames are irrelevant to add)."""
    return np.full((H, 2, 2), value, dtype=np.uint8)


def filled_buffer(episodes, capacity=100, truncated_last=()):
    """Add episodes of the given lengths; frame of the k-th added transition = k + 1 (0 means padding)."""
    buf = FrameStackBuffer((H, 2, 2), capacity, 8, "cpu", np.random.default_rng(0))
    k = 0
    for e, length in enumerate(episodes):
        for t in range(length):
            last = t == length - 1
            not_done = 1.0 if (not last or e in truncated_last) else 0.0
            buf.add(frame(k + 1), k % 3, None, float(k), not_done, t == 0)
            k += 1
    return buf


def stack_values(stack):
    """The newest-first frame values of one (H, 2, 2) stack."""
    return [int(v) for v in stack[:, 0, 0]]


def test_stack_mask_zeroes_frames_older_than_episode_start():
    first = np.array([[0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(stack_mask(first), [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])


def test_stacks_at_episode_start_and_mid_episode():
    buf = filled_buffer([6, 5])  # frames 1..6 episode A, 7..11 episode B
    s, ns = buf.stacks(np.array([0, 1, 4, 6, 7, 9]))
    assert [stack_values(x) for x in s] == [[1, 0, 0, 0], [2, 1, 0, 0], [5, 4, 3, 2],
                                            [7, 0, 0, 0], [8, 7, 0, 0], [10, 9, 8, 7]]
    assert [stack_values(x) for x in ns] == [[2, 1, 0, 0], [3, 2, 1, 0], [6, 5, 4, 3],
                                             [8, 7, 0, 0], [9, 8, 7, 0], [11, 10, 9, 8]]


def test_terminal_transition_next_state_is_next_episodes_reset_state():
    buf = filled_buffer([3, 3])
    s, ns = buf.stacks(np.array([2]))  # last step of episode A (terminal)
    assert stack_values(s[0]) == [3, 2, 1, 0]
    assert stack_values(ns[0]) == [4, 0, 0, 0]
    assert buf.not_done[2, 0] == 0
    assert buf.sampleable(np.array([2]))[0]


def test_truncated_step_is_stored_but_never_sampled():
    # Episode A (5 steps) is truncated: its 5th step (index 4) is kept as the s' frame of index 3.
    buf = filled_buffer([5, 4], truncated_last=(0,))
    _, ns = buf.stacks(np.array([3]))
    assert stack_values(ns[0]) == [5, 4, 3, 2]  # the reference would give [6, 4, 3, 2] (next episode's frame)
    mask = buf.sampleable(np.arange(buf.size))
    assert not mask[4] and mask[3]
    assert not mask[buf.size - 1]  # newest row: its s' frame is not stored yet
    drawn = buf.sample_indices(5000)
    assert 4 not in drawn and buf.size - 1 not in drawn
    assert set(np.unique(drawn)) == set(np.flatnonzero(mask))


def test_wrap_around_stacks_and_invalid_range():
    buf = filled_buffer([7, 6], capacity=10)  # 13 transitions into 10 rows: ptr = 3
    assert buf.wrapped and buf.ptr == 3 and buf.size == 10
    # Rows now hold frames [11, 12, 13, 4, 5, 6, 7, 8, 9, 10]; episode B = frames 8..13, starts at row 7.
    s, ns = buf.stacks(np.array([1, 0, 9]))
    assert stack_values(s[0]) == [12, 11, 10, 9]   # crosses the end of the array: wraps around
    assert stack_values(s[1]) == [11, 10, 9, 8]
    assert stack_values(ns[2]) == [11, 10, 9, 8]
    mask = buf.sampleable(np.arange(10))
    # Row 2 (newest) has no stored s'; rows 3, 4, 5 have stacks reaching rows 2, 1, 0 (newest data).
    assert mask.tolist() == [True, True, False, False, False, False, True, True, True, True]
    assert not np.isin(buf.sample_indices(4000), [2, 3, 4, 5]).any()


def test_sample_returns_device_tensors_with_reference_layout():
    buf = filled_buffer([20])
    batch = buf.sample(16)
    assert batch.state.shape == (16, H, 2, 2) and batch.state.dtype == torch.uint8  # the network converts
    assert batch.action.shape == (16, 1) and batch.action.dtype == torch.int64
    assert batch.reward.shape == batch.not_done.shape == (16, 1)
    # s' newest frame is always s newest frame + 1 within this single episode.
    torch.testing.assert_close(batch.next_state[:, 0], batch.state[:, 0] + 1)


def test_frame_buffer_round_trip(tmp_path):
    buf = filled_buffer([7, 6], capacity=10)
    buf.save(str(tmp_path / "b"), chunk=4)
    assert sorted(p.split("_")[-1] for p in glob.glob(str(tmp_path / "b_state_*.npy"))) == ["11.npy", "4.npy", "8.npy"]
    for mmap in (False, True):  # copied, or left in the chunk files and memory-mapped (--mmap)
        loaded = FrameStackBuffer((H, 2, 2), 1, 8, "cpu", np.random.default_rng(0))
        loaded.load(str(tmp_path / "b"), mmap=mmap)
        assert (loaded.ptr, loaded.size, loaded.wrapped) == (3, 10, True)
        ind = np.arange(10)
        for a, b in zip(buf.stacks(ind), loaded.stacks(ind)):
            torch.testing.assert_close(a, b)
        np.testing.assert_array_equal(buf.sampleable(ind), loaded.sampleable(ind))
    assert type(loaded.frames).__name__ == "MappedFrames"


def write_reference_atari_buffer(prefix, frames, first, not_done, ptr, chunk=3):
    """Files as the reference AtariBuffer.save writes them (float64 rewards, size + 1 frame rows)."""
    n = len(first)
    np.save(f"{prefix}_action.npy", np.arange(n).reshape(-1, 1) % 2)
    np.save(f"{prefix}_reward.npy", np.ones((n, 1)))
    np.save(f"{prefix}_not_done.npy", np.asarray(not_done, dtype=np.float64).reshape(-1, 1))
    np.save(f"{prefix}_first_timestep.npy", np.asarray(first, dtype=np.uint8))
    np.save(f"{prefix}_replay_info.npy", [ptr, chunk])
    rows = np.concatenate([frames, np.zeros((1, *frames.shape[1:]), np.uint8)])
    crt, end = 0, min(chunk, n + 1)
    while crt < n + 1:
        np.save(f"{prefix}_state_{end}.npy", rows[crt:end])
        crt, end = end, min(end + chunk, n + 1)


def test_reference_buffer_loads_and_skips_its_truncation_bug(tmp_path):
    # Reference buffers drop the truncated step: index 3 ends a truncated episode (not_done 1) and
    # index 4 starts the next episode, so index 3's s' would borrow the next episode's frame.
    frames = np.arange(1, 9, dtype=np.uint8).repeat(4).reshape(8, 2, 2)
    first = [1, 0, 0, 0, 1, 0, 0, 0]
    not_done = [1, 1, 1, 1, 1, 1, 1, 1]
    write_reference_atari_buffer(str(tmp_path / "r"), frames, first, not_done, ptr=8)
    buf = FrameStackBuffer((H, 2, 2), 1, 4, "cpu", np.random.default_rng(0))
    buf.load(str(tmp_path / "r"))
    assert buf.size == 8 and not buf.wrapped
    assert buf.sampleable(np.arange(8)).tolist() == [True, True, True, False, True, True, True, False]
    s, ns = buf.stacks(np.array([5]))
    assert stack_values(s[0]) == [6, 5, 0, 0] and stack_values(ns[0]) == [7, 6, 5, 0]
    assert buf.sample().state.shape == (4, H, 2, 2)


def test_missing_buffer_names_the_command(tmp_path):
    from common.errors import UserError
    buf = FrameStackBuffer((H, 2, 2), 1, 4, "cpu", np.random.default_rng(0))
    with pytest.raises(UserError, match="python main.py --generate_buffer"):
        buf.load(str(tmp_path / "nothing"), how_to_create="python main.py --generate_buffer --env X")


def test_replay_buffer_round_trip_and_reference_format(tmp_path):
    rng = np.random.default_rng(0)
    buf = ReplayBuffer((3,), 10, 4, "cpu", rng)
    for k in range(12):
        buf.add(np.full(3, k), k % 2, np.full(3, k + 1), float(k), float(k % 5 != 4))
    assert (buf.size, buf.ptr) == (10, 2)
    buf.save(str(tmp_path / "v"))
    for mmap in (False, True):
        loaded = ReplayBuffer((3,), 1, 4, "cpu", rng)
        loaded.load(str(tmp_path / "v"), mmap=mmap)
        np.testing.assert_array_equal(loaded.state, buf.state)
        np.testing.assert_array_equal(loaded.next_state, buf.next_state)
        assert loaded.ptr == 2 and loaded.size == 10 and isinstance(loaded.state, np.memmap) == mmap
        assert loaded.sample().state.shape == (4, 3)
    # The reference StandardBuffer stores float64 everywhere, actions included.
    prefix = str(tmp_path / "ref")
    np.save(f"{prefix}_state.npy", np.arange(12.0).reshape(4, 3))
    np.save(f"{prefix}_next_state.npy", np.arange(12.0).reshape(4, 3) + 1)
    np.save(f"{prefix}_action.npy", np.array([[0.0], [1.0], [1.0], [0.0]]))
    np.save(f"{prefix}_reward.npy", np.ones((4, 1)))
    np.save(f"{prefix}_not_done.npy", np.ones((4, 1)))
    np.save(f"{prefix}_ptr.npy", 4)
    ref = ReplayBuffer((3,), 100, 4, "cpu", rng)
    ref.load(prefix)
    batch = ref.sample()
    assert batch.action.dtype == torch.int64 and batch.state.dtype == torch.float32
    torch.testing.assert_close(batch.next_state, batch.state + 1)


def test_replay_buffer_replace_columns_and_what_a_manifest_records(tmp_path):
    buf = ReplayBuffer((2,), 50, 4, "cpu", np.random.default_rng(0), action_shape=(3,), action_dtype=np.float32)
    state = np.arange(10.0).reshape(5, 2)
    buf.replace(state, np.ones(15), state + 1, np.arange(5.0), np.array([1, 1, 0, 1, 1]))
    assert (buf.capacity, buf.size, buf.ptr) == (5, 5, 0) and not buf.discrete
    s, a, s2, r, nd = buf.columns()
    assert a.shape == (5, 3) and r.shape == nd.shape == (5, 1) and r.dtype == nd.dtype == np.float32
    np.testing.assert_array_equal(s2, state + 1)
    assert buf.saved() == ("float32", 5, 0)
    paths = buf.save(str(tmp_path / "v"))
    assert paths == ReplayBuffer.files(str(tmp_path / "v"))
    loaded = ReplayBuffer((2,), 1, 4, "cpu", np.random.default_rng(0), action_shape=(3,), action_dtype=np.float32)
    loaded.load(str(tmp_path / "v"))
    for x, y in zip(buf.columns(), loaded.columns()):
        np.testing.assert_array_equal(x, y)


def test_frame_buffer_files_are_what_loading_reads(tmp_path):
    assert chunk_ranges(8, 4) == [(0, 4), (4, 8), (8, 9)] and stored_chunks(8, 4) == [(0, 4), (4, 8)]
    assert stored_chunks(8, 0) == []
    buf = filled_buffer([5, 3])
    prefix = str(tmp_path / "f")
    written = buf.save(prefix, chunk=4)
    listed = FrameStackBuffer.files(prefix)
    # every listed file is written; only the last chunk, padding alone, is not read
    assert set(listed) <= set(written) and sorted(set(written) - set(listed)) == [f"{prefix}_state_9.npy"]
    assert listed[:5] == [f"{prefix}_{n}.npy" for n in ("action", "reward", "not_done", "first_timestep",
                                                         "replay_info")]
    assert buf.saved() == FrameStackBuffer.saved_as(8, 8) == ("uint8", 8, 8)
    os.remove(f"{prefix}_replay_info.npy")  # without it the chunks cannot be known: they are left out
    assert FrameStackBuffer.files(prefix)[-1] == f"{prefix}_replay_info.npy"


def test_manifest_records_a_buffer_or_files_written_without_one(tmp_path):
    cfg = SimpleNamespace(env="PongNoFrameskip-v4", command="python main.py")
    info = SimpleNamespace(kind="atari", state_shape=(H, 2, 2), action_space=gym.spaces.Discrete(3))
    buf = filled_buffer([5, 3])
    records = []
    for name, described in (("buffer", buf), ("saved", FrameStackBuffer.saved_as(8, 8))):
        prefix = str(tmp_path / name)
        manifest.begin(prefix)
        manifest.finish(prefix, buf.save(prefix, chunk=4), cfg, info, described)
        record = json.load(open(manifest.manifest_path(prefix)))
        records.append({k: record[k] for k in ("state_dtype", "size", "ptr")})
        manifest.verify(prefix, cfg, info, "regen")
    assert records[0] == records[1] == {"state_dtype": "uint8", "size": 8, "ptr": 8}
