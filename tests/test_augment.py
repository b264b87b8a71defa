"""Random shift: within ±pad, replicate borders, equal to a naive per-sample pad-and-crop."""
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
