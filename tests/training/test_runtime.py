"""Seeding, evaluation and atomic writes."""
import os

import numpy as np
import pytest
import torch

from common.io import atomic_open, atomic_save_npy
from common.training.runtime import evaluate
from common.envs.vector import make_vec_env


def test_evaluation_leaves_the_training_random_streams_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()

    def sampling_policy(states):  # like continuous BCQ's VAE: consumes torch randomness
        return (torch.rand(len(states)) < 0.5).long().numpy()

    first = evaluate(sampling_policy, lambda n: make_vec_env("CartPole-v1", None, n), seed=3, episodes=2, eval_eps=0.5)
    assert torch.equal(torch.get_rng_state(), before)
    second = evaluate(sampling_policy, lambda n: make_vec_env("CartPole-v1", None, n), seed=3, episodes=2, eval_eps=0.5)
    np.testing.assert_array_equal(first, second)  # the same seed gives the same evaluation


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = str(tmp_path / "out.npy")
    atomic_save_npy(path, np.arange(3))
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write(b"half")
            raise RuntimeError("killed mid-write")
    np.testing.assert_array_equal(np.load(path), np.arange(3))  # the old file is intact
    assert os.listdir(tmp_path) == ["out.npy"]
