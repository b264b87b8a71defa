"""Random shift: within ±pad, replicate borders, equal to a naive per-sample pad-and-crop."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.learning.augment import GaussianNoise, RandomShift, shift


def naive_crop(images, offsets, pad):
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="replicate")
    h, w = images.shape[-2:]
    return torch.stack([padded[b, :, oy:oy + h, ox:ox + w] for b, (oy, ox) in enumerate(offsets.tolist())])


def test_shift_equals_naive_pad_and_crop():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 4, 84, 84)).float()
    offsets = torch.randint(0, 9, (64, 2))
    torch.testing.assert_close(shift(images, offsets, 4), naive_crop(images, offsets, 4))


def test_shift_extreme_offsets_replicate_the_border():
    image = torch.arange(36.0).reshape(1, 1, 6, 6)
    out = shift(image, torch.tensor([[0, 0]]), 2)  # content moves down-right by 2
    torch.testing.assert_close(out[0, 0, :3, :3], image[0, 0, 0, 0].expand(3, 3))
    torch.testing.assert_close(out[0, 0, 2:, 2:], image[0, 0, :4, :4])
    out = shift(image, torch.tensor([[4, 4]]), 2)  # content moves up-left by 2
    torch.testing.assert_close(out[0, 0, 3:, 3:], image[0, 0, 5, 5].expand(3, 3))
    torch.testing.assert_close(shift(image, torch.tensor([[2, 2]]), 2), image)  # centre crop = identity


def test_random_shift_stays_within_pad_and_moves_stacked_frames_together():
    torch.manual_seed(1)
    h = w = 12
    rows = torch.arange(h).view(1, 1, h, 1).expand(1, 3, h, w)
    cols = torch.arange(w).view(1, 1, 1, w).expand(1, 3, h, w)
    images = (rows * 100 + cols).float().repeat(500, 1, 1, 1)
    images[:, 1] += 10_000  # channels differ, offsets must not
    out = RandomShift(pad=3)(images)
    # The centre pixel's source tells each sample's offset.
    dy = (out[:, 0, h // 2, w // 2] // 100 - h // 2).long()
    dx = (out[:, 0, h // 2, w // 2] % 100 - w // 2).long()
    assert dy.min() == -3 and dy.max() == 3 and dx.min() == -3 and dx.max() == 3
    for c in range(3):
        expected = shift(images[:, c:c + 1], torch.stack([dy, dx], 1) + 3, 3)
        torch.testing.assert_close(out[:, c:c + 1], expected)


def test_uint8_like_values_survive_shift_exactly():
    images = torch.randint(0, 2, (8, 4, 10, 10)).float()
    out = RandomShift(pad=1)(images)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_gaussian_noise_scale_per_dimension():
    torch.manual_seed(0)
    noise = GaussianNoise(torch.tensor([0.0, 1.0, 10.0]))
    x = torch.zeros(20_000, 3)
    std = (noise(x) - x).std(0)
    assert std[0] == 0 and abs(std[1] - 1) < 0.03 and abs(std[2] - 10) < 0.3


@pytest.mark.parametrize("history", [4, 3])  # 4: cut as one 32-bit word per pixel; 3: frame by frame
def test_views_cut_from_the_frame_window_equal_shifting_each_stack(history):
    """The fused path (pad the H+1 shared frames once, cut all views from them, mask after) gives
    exactly ``shift`` applied to [s; s; s'; s'] with the same offsets, episode starts included."""
    import numpy as np

    from common.learning.augment import augmented_views, shift_window
    from common.data.buffers import FrameStackBuffer

    rng = np.random.default_rng(0)
    buf = FrameStackBuffer((history, 10, 10), 64, 16, torch.device("cpu"), rng)
    for i in range(40):
        frame = torch.randint(0, 256, (1, 10, 10), dtype=torch.uint8).numpy()
        buf.add(frame, 0, frame, 0.0, float(i % 7 != 6), first_timestep=i % 7 == 0)
    ind = np.array([0, 1, 2, 5, 6, 7, 8, 9, 13, 20, 22, 30, 31, 35, 36, 37])
    window = buf.window(ind)
    assert not window.masks.all()  # episode starts inside some stacks
    s, ns = buf.stacks(ind)
    offsets = torch.randint(0, 7, (4 * len(ind), 2))
    views_s, views_ns = shift_window(window, 2, offsets, 3)
    expected = shift(torch.cat([s, s, ns, ns]), offsets, 3)
    torch.testing.assert_close(torch.cat([views_s, views_ns]), expected, rtol=0, atol=0)
    assert views_s.is_contiguous(memory_format=torch.channels_last) == (history == 4)
    batch = buf.sample()
    torch.manual_seed(5)
    fused = augmented_views(RandomShift(3), batch)
    torch.manual_seed(5)
    plain = augmented_views(RandomShift(3), batch._replace(window=None))
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def minatar_like(n, channels=4, density=0.04, seed=0):
    """Sparse binary (n, C, 10, 10) grids, half of them with the two outer rings empty."""
    g = torch.Generator().manual_seed(seed)
    states = (torch.rand((n, channels, 10, 10), generator=g) < density).to(torch.uint8)
    states[: n // 2, :, :2] = states[: n // 2, :, -2:] = 0
    states[: n // 2, :, :, :2] = states[: n // 2, :, :, -2:] = 0
    return states


class FixedShift(RandomShift):
    """`RandomShift` at given offsets: the measurement sees exactly these crops."""

    def __init__(self, pad, offsets):
        super().__init__(pad)
        self.fixed = offsets

    def offsets(self, n, device):
        return self.fixed


def test_measure_counts_duplicated_and_dropped_objects():
    from augmentation_check import measure

    state = torch.zeros(1, 2, 10, 10, dtype=torch.uint8)
    state[0, 0, 0, 4] = 1  # on the top border
    state[0, 1, 5, 5] = 1  # inside
    states = state.repeat(4, 1, 1, 1)
    # (0, 1): content moves down, the top row is replicated (object duplicated); (2, 1): up, it is
    # dropped; (1, 1): identity; (1, 0): right, nothing on the left or right border.
    offsets = torch.tensor([[0, 1], [2, 1], [1, 1], [1, 0]])
    result = measure(states, FixedShift(1, offsets))
    assert result["count"] == result["channel_count"] == result["objects"] == 0.5
    assert result["count_moved"] == pytest.approx(2 / 3) and result["unshifted"] == 0.25
    # Two objects of one channel, one duplicated and one dropped: the counts hide it, `objects` not.
    state = torch.zeros(1, 1, 10, 10, dtype=torch.uint8)
    state[0, 0, 0, 2] = state[0, 0, 9, 7] = 1
    result = measure(state, FixedShift(1, torch.tensor([[0, 1]])))
    assert result["count"] == result["channel_count"] == 0 and result["objects"] == 1


def test_translation_offsets_match_a_naive_check():
    from common.learning.augment import object_counts, translation_offsets

    states = minatar_like(300, seed=1)
    for pad in (1, 2):
        allowed, n = translation_offsets(states, pad), 2 * pad + 1
        for k in range(n * n):
            oy, ox = divmod(k, n)
            shifted = shift(states, torch.tensor([[oy, ox]]).expand(len(states), 2), pad)
            moved = F.pad(states, (pad,) * 4)[:, :, oy:oy + 10, ox:ox + 10]  # nothing from the border
            naive = (shifted == moved).flatten(1).all(1) & (object_counts(moved) == object_counts(states)).all(1)
            assert torch.equal(allowed[:, k], naive)
        assert allowed[:, n * n // 2].all()  # the identity


@pytest.mark.parametrize("pad", [1, 2])
def test_object_preserving_shift_keeps_objects_and_still_shifts(pad):
    from common.learning.augment import ObjectPreservingShift, object_counts

    torch.manual_seed(0)
    states = minatar_like(2000, seed=2)
    shifted, offsets = ObjectPreservingShift(pad).sample(states)
    assert offsets.min() >= 0 and offsets.max() <= 2 * pad
    assert torch.equal(object_counts(shifted), object_counts(states))
    moved = (offsets != pad).any(1)
    inner = slice(0, 1000)  # no object within two cells of a border: every offset qualifies
    assert moved[inner].float().mean() > 1 - 2 / (2 * pad + 1) ** 2
    assert len({tuple(o) for o in offsets[inner].tolist()}) == (2 * pad + 1) ** 2
    torch.testing.assert_close(shifted, shift(states, offsets, pad), rtol=0, atol=0)


def test_object_preserving_shift_through_augmented_views_and_make_augmentation():
    from types import SimpleNamespace

    from common.learning.augment import ObjectPreservingShift, augmented_views, make_augmentation, object_counts
    from common.data.buffers import Batch
    from common.errors import UserError

    states = minatar_like(64, seed=3).float()
    batch = Batch(states, torch.zeros(64, 1, dtype=torch.long), states.flip(0), torch.zeros(64, 1), torch.ones(64, 1))
    views_s, views_ns = augmented_views(ObjectPreservingShift(1), batch)
    assert views_s.shape == (128, 4, 10, 10)
    assert torch.equal(object_counts(views_s), object_counts(states).repeat(2, 1))
    assert torch.equal(object_counts(views_ns), object_counts(states.flip(0)).repeat(2, 1))
    cfg = lambda shift: SimpleNamespace(aug_pad=1, aug_shift=shift)
    assert isinstance(make_augmentation("image", cfg("preserve_objects"), None, "cpu"), ObjectPreservingShift)
    assert type(make_augmentation("image", cfg("replicate"), None, "cpu")) is RandomShift
    assert type(make_augmentation("atari", cfg(None), None, "cpu")) is RandomShift
    for kind, value in (("atari", "preserve_objects"), ("image", "zero")):
        with pytest.raises(UserError):
            make_augmentation(kind, cfg(value), None, "cpu")


def run_check(*argv):
    from augmentation_check import main

    try:
        return main(list(argv))
    except SystemExit as stop:  # argparse's usage errors
        return stop.code


def test_augmentation_check_is_deterministic(tmp_path, capsys):
    import json

    for name in ("a.json", "b.json"):
        assert run_check("--env", "MinAtar/Freeway-v1", "--states", "300", "--out", str(tmp_path / name)) == 0
    rows = json.loads((tmp_path / "a.json").read_text())
    assert rows == json.loads((tmp_path / "b.json").read_text())
    assert [row["shift"] for row in rows] == ["replicate", "preserve_objects"]
    assert rows[0]["count"] > 0 and rows[1]["count"] == rows[1]["objects"] == 0
    assert "| MinAtar/Freeway-v1 | replicate | 300 |" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [("--env", "CartPole-v1"), ("--env", "NoSuchEnv-v0"), ("--states", "0"),
                                  ("--env", "MinAtar/Breakout-v1", "--env", "MinAtar/Freeway-v1", "--buffer", "x")])
def test_augmentation_check_rejects_bad_input(argv, capsys):
    assert run_check(*argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err


def test_augmentation_check_reads_a_buffer_only_after_main_py_s_checks(tmp_path, capsys):
    """--buffer: a buffer of the named game is measured; one of another game, or with damaged files, or with
    states that are not MinAtar cells, is a one-line error, as main.py would refuse it."""
    from types import SimpleNamespace

    from common.data import manifest
    from common.data.buffers import ReplayBuffer
    from common.envs.make import make_env

    info = make_env("MinAtar/Breakout-v1")
    info.env.close()
    rng = np.random.default_rng(0)

    def saved(name, states):
        buf = ReplayBuffer(info.state_shape, 40, 1, "cpu", rng, state_dtype=states.dtype)
        for state in states:
            buf.add(state, 0, state, 0.0, 1.0)
        prefix = str(tmp_path / name)
        manifest.begin(prefix)
        manifest.finish(prefix, buf.save(prefix), SimpleNamespace(env="MinAtar/Breakout-v1", command="test"), info, buf)
        return prefix

    cells = (rng.random((30, *info.state_shape)) < 0.1).astype(np.uint8)
    good = saved("good", cells)
    assert run_check("--env", "MinAtar/Breakout-v1", "--buffer", good, "--states", "20") == 0
    assert "| MinAtar/Breakout-v1 | replicate | 20 |" in capsys.readouterr().out
    halves = saved("halves", cells * 0.5)
    state = np.load(f"{good}_state.npy")
    np.save(f"{good}_state.npy", state[:5])  # cut short: its checksum no longer matches
    for argv, message in ((["--env", "MinAtar/Freeway-v1", "--buffer", good], "was generated with env MinAtar/Breakout-v1"),
                          (["--env", "MinAtar/Breakout-v1", "--buffer", good], "is corrupted (its SHA-256"),
                          (["--env", "MinAtar/Breakout-v1", "--buffer", halves], "not whole numbers in 0-255"),
                          (["--pad", "100"], "--pad must be between 1 and 9"),
                          (["--states", str(10**11)], "at most 1e7"),
                          (["--out", str(tmp_path / "no" / "rows.json")], "not a file in an existing folder")):
        assert run_check(*argv) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.err.count("\n") == 1 and not captured.out, captured
