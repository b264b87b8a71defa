"""The aggregate statistics: IQM, bootstrap and stratified bootstrap CIs, paired differences, the
probability of improvement, normalized scores and the measured random-play scores."""
import os

import numpy as np
import pytest

from common.envs.make import random_policy_returns
from common.reporting.scores import (RANDOM_SCORES, bootstrap_mean_ci, human_normalized, interval_estimate, iqm,
                                     paired_difference, probability_of_improvement, relative_improvement)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_scores_by_hand():
    assert iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))  # rliable's IQM, by hand
    assert iqm([[1.0, 100.0], [2.0, 3.0]]) == pytest.approx(2.5)
    assert iqm(np.array([[0.0, 7.0], [1.0, 6.0], [2.0, 5.0], [3.0, 4.0]])) == pytest.approx(3.5)  # runs × tasks
    assert relative_improvement(-50.0, -100.0) == pytest.approx(0.5)  # less negative is better
    assert human_normalized("PongNoFrameskip-v4", 14.6) == pytest.approx(1.0)
    assert human_normalized("ALE_Pong-v5", -20.7) == pytest.approx(0.0)
    assert human_normalized("AsterixNoFrameskip-v0", 8503.3) == pytest.approx(1.0)
    assert human_normalized("CartPole-v1", 1.0) is None
    low, high = bootstrap_mean_ci(np.array([[1.0], [1.0], [1.0]]), np.random.default_rng(0))
    assert low[0] == high[0] == 1.0
    rng = np.random.default_rng(0)
    low, high = bootstrap_mean_ci(rng.normal(size=(50, 1)), rng)
    assert low[0] < 0.0 < high[0]
    constant = np.full((4, 3), 2.0)
    assert interval_estimate(constant, iqm) == (2.0, 2.0, 2.0)
    spread = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]])
    value, low, high = interval_estimate(spread, iqm, seed=1, reps=500)
    assert value == iqm(spread) and 0.0 <= low <= value <= high <= 12.0
    assert interval_estimate(spread, iqm, seed=1, reps=500) == (value, low, high)  # seeded
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    interval_estimate(spread, iqm, seed=2, reps=50)
    assert (np.random.get_state()[1] == before).all()  # NumPy's global generator is left as it was
    import subprocess
    import sys
    code = ("import numpy as np; from common.reporting.scores import interval_estimate, iqm; "
            "print(repr(interval_estimate(np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]]), iqm, seed=1, reps=500)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert other.stdout.strip() == repr((value, low, high))  # the same CI in another process


def test_paired_difference_is_the_t_interval_by_hand():
    mean, low, high, n = paired_difference([1.0, 2.0, 3.0, 6.0])
    half = 3.182446305284263 * np.std([1.0, 2.0, 3.0, 6.0], ddof=1) / 2  # t(0.975, 3) · s / √4
    assert (mean, n) == (3.0, 4) and (low, high) == pytest.approx((3.0 - half, 3.0 + half))
    assert np.isnan(paired_difference([1.0])[1])  # one pair has no spread


def test_probability_of_improvement_by_hand():
    assert probability_of_improvement([[2.0], [3.0]], [[1.0], [2.0]]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert probability_of_improvement([[0.0]], [[1.0]]) == 0.0
    x, y = np.array([[2.0, 0.0], [3.0, 0.0]]), np.array([[1.0, 1.0], [2.0, 1.0]])  # runs × tasks
    value, low, high = interval_estimate((x, y), probability_of_improvement, reps=200)
    assert value == pytest.approx((0.875 + 0.0) / 2) and 0.0 <= low <= value <= high <= 0.5


@pytest.mark.parametrize("env", ["CartPole-v1", "MinAtar/Seaquest-v1"])
def test_random_scores_are_what_the_procedure_measures(env):
    returns = random_policy_returns(env)
    assert (returns.mean(), returns.std() / 10) == pytest.approx(RANDOM_SCORES[env], abs=0.0051)
