import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np
import pytest


@pytest.fixture
def reference_buffer(tmp_path):
    """``tmp_path`` holding a CartPole buffer as the reference StandardBuffer writes it (float64 arrays,
    (N, 1) actions): offline stages train on it without stages 1 and 2."""
    rng = np.random.default_rng(0)
    n = 400
    state = rng.normal(size=(n, 4)) * 0.05
    prefix = tmp_path / "buffers" / "Default_CartPole-v1_0"
    prefix.parent.mkdir()
    arrays = {"state": state, "next_state": state + 0.01, "action": rng.integers(0, 2, (n, 1)).astype(float),
              "reward": np.ones((n, 1)), "not_done": np.ones((n, 1))}
    for name, array in arrays.items():
        np.save(f"{prefix}_{name}.npy", array)
    np.save(f"{prefix}_ptr.npy", n)
    return tmp_path
