"""Random shift: within ±pad, replicate borders, equal to a naive per-sample pad-and-crop."""
import pytest
import torch
import torch.nn.functional as F

from common.augment import GaussianNoise, RandomShift, shift


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

    from common.augment import augmented_views, shift_window
    from common.buffers import FrameStackBuffer

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
