"""SQIL (target, 50/50 demonstration batches) and h-DQN on the discrete stochastic decision process."""
import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from common.data.buffers import Batch, ReplayBuffer
from common.envs.make import VECTOR
from common.training.config import defaults
from common.envs.sdp import DiscreteStochasticDecisionProcess
from discrete_SQV.hdqn import HDQN, run_episode, with_goal
from discrete_SQV.sqil import SQIL, DemoMix
from tests.discrete_SQV.test_losses import Table


def one_hot(i):
    return np.eye(6, dtype=np.float32)[i]


# --- the decision process ------------------------------------------------------------------------
def test_decision_process_transition_probabilities():
    env = DiscreteStochasticDecisionProcess()
    env.reset(seed=0)
    moves = []
    for _ in range(4000):
        env.reset()
        state, *_ = env.step(1)
        moves.append(int(np.argmax(state)))
    assert abs(moves.count(2) / 4000 - 0.5) < 0.03 and set(moves) == {0, 2}  # right: s3 or back to s1
    env.reset()
    state, reward, terminated, truncated, _ = env.step(0)  # left from s2: s1, deterministic
    assert int(np.argmax(state)) == 0 and terminated and not truncated and reward == pytest.approx(0.01)


def test_decision_process_rewards_and_termination():
    env = DiscreteStochasticDecisionProcess(right_success=1.0)
    state, _ = env.reset(seed=0)
    np.testing.assert_array_equal(state, one_hot(1))
    for expected in (2, 3, 4, 5, 5):  # right moves up to s6, which stays s6
        state, reward, terminated, *_ = env.step(1)
        assert int(np.argmax(state)) == expected and reward == 0.0 and not terminated
    for expected in (4, 3, 2, 1):
        state, reward, terminated, *_ = env.step(0)
        assert reward == 0.0 and not terminated
    state, reward, terminated, *_ = env.step(0)
    assert terminated and reward == 1.0  # s6 was visited


def test_decision_process_is_registered_with_a_time_limit():
    env = gym.make("DiscreteStochasticDecisionProcess-v0", right_success=1.0)
    env.reset(seed=0)
    truncated = [env.step(1)[3] for _ in range(100)]
    assert truncated == [False] * 99 + [True]


# --- SQIL ----------------------------------------------------------------------------------------
def sqil_config(**overrides):
    return SimpleNamespace(**{**defaults("regular", VECTOR), **overrides})


def test_sqil_soft_target_on_a_hand_made_batch():
    target_rows = [[1.0, 2.0], [0.0, -3.0]]
    agent = SQIL(VECTOR, (1,), 2, sqil_config(discount=0.9, sqil_alpha=0.5), "cpu")
    agent.Q_target = Table(target_rows)
    next_state, reward, not_done = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0], [0.0]])
    y = agent.target(next_state, reward, not_done)
    soft = 0.5 * math.log(math.exp(1.0 / 0.5) + math.exp(2.0 / 0.5))
    assert y[0, 0].item() == pytest.approx(1.0 + 0.9 * soft, rel=1e-6)
    assert y[1, 0].item() == pytest.approx(0.0)  # terminal: no bootstrap


def test_sqil_target_stays_within_the_bounds_of_soft_values_of_zero_one_rewards():
    agent = SQIL(VECTOR, (1,), 2, sqil_config(discount=0.9, sqil_alpha=0.5), "cpu")
    agent.Q_target = Table([[100.0, 200.0], [-50.0, -60.0]])  # a diverging and a negative estimate
    y = agent.target(torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0], [1.0]]))
    q_max = (1.0 + 0.9 * 0.5 * math.log(2)) / (1.0 - 0.9)  # r ≤ 1 and V ≤ max Q + α·log A
    assert y[:, 0].tolist() == pytest.approx([q_max, 0.0])


def test_demo_mix_is_half_demonstrations_with_reward_one():
    rng = np.random.default_rng(0)
    demos, online = ReplayBuffer((1,), 50, 6, "cpu", rng), ReplayBuffer((1,), 50, 6, "cpu", rng)
    for k in range(50):
        demos.add([100.0 + k], 0, [0.0], -7.0, 1.0)   # demonstrations: states ≥ 100, any stored reward
        online.add([float(k)], 1, [0.0], 5.0, 0.0)    # the agent's own: states < 100
    mix = DemoMix(demos, online, 6)
    batch = mix.sample()
    from_demo = (batch.state[:, 0] >= 100).tolist()
    assert from_demo == [True] * 3 + [False] * 3
    assert batch.reward[:, 0].tolist() == [1.0] * 3 + [0.0] * 3
    assert batch.not_done[:, 0].tolist() == [1.0] * 3 + [0.0] * 3 and batch.action[:, 0].tolist() == [0] * 3 + [1] * 3
    assert DemoMix(demos, ReplayBuffer((1,), 50, 6, "cpu", rng), 6).size == 0  # no training before 3 own steps


# --- h-DQN ---------------------------------------------------------------------------------------
def test_hdqn_goal_bookkeeping():
    """A scripted episode: goal s6 from s2 (reached), then goal s1 (reached, the episode ends)."""
    cfg = SimpleNamespace(**{**defaults("regular", VECTOR), "buffer_size": 100, "batch_size": 4})
    hdqn = HDQN(6, 2, cfg, torch.device("cpu"), np.random.default_rng(0))
    goals = iter([5, 0])
    hdqn.choose_goal = lambda state: next(goals)
    hdqn.choose_action = lambda goal, state: 1 if goal > int(np.argmax(state)) else 0
    env = DiscreteStochasticDecisionProcess(right_success=1.0)
    total, length = run_episode(hdqn, env, seed=0)  # no learning
    assert (total, length) == (1.0, 9)
    c = hdqn.controller_buffer
    np.testing.assert_array_equal(c.state[0], with_goal(5, one_hot(1), 6))
    assert c.reward[:9, 0].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 1]      # intrinsic: goal reached
    assert c.not_done[:9, 0].tolist() == [1, 1, 1, 0, 1, 1, 1, 1, 0]    # a reached goal ends the attempt
    m = hdqn.meta_buffer
    assert m.size == 2 and m.action[:2, 0].tolist() == [5, 0]
    np.testing.assert_array_equal(m.state[:2], [one_hot(1), one_hot(5)])
    np.testing.assert_array_equal(m.next_state[:2], [one_hot(5), one_hot(0)])
    assert m.reward[:2, 0].tolist() == [0.0, 1.0] and m.not_done[:2, 0].tolist() == [1.0, 0.0]
    assert hdqn.goals.attempts.tolist() == [1, 0, 0, 0, 0, 1] and hdqn.goals.success_rate(5) == 1.0


def test_hdqn_meta_epsilon_anneals_and_goal_epsilon_follows_attempts():
    cfg = SimpleNamespace(**{**defaults("regular", VECTOR), "buffer_size": 10, "batch_size": 4})
    hdqn = HDQN(6, 2, cfg, torch.device("cpu"), np.random.default_rng(0))
    assert hdqn.meta_epsilon() == 1.0 and hdqn.goals.epsilon(3) == 1.0
    hdqn.steps = 25_000
    assert hdqn.meta_epsilon() == pytest.approx(0.55)
    hdqn.steps = 10**6
    assert hdqn.meta_epsilon() == pytest.approx(0.1)
    for _ in range(1000):
        hdqn.goals.record(3, False)
    assert hdqn.goals.epsilon(3) == pytest.approx(0.55) and hdqn.goals.epsilon(2) == 1.0


def test_hdqn_smoke_run(tmp_path):
    import subprocess
    import sys
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, os.path.join(root, "main.py"), "--hdqn", "--env",
                             "DiscreteStochasticDecisionProcess-v0", "--max_timesteps", "400", "--eval_freq", "200",
                             "--batch_size", "16", "--out_dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    returns = np.load(tmp_path / "results" / "hDQN_DiscreteStochasticDecisionProcess-v0_0_episodes.npy")
    assert len(returns) > 10 and set(np.round(returns, 2)) <= {0.01, 1.0, 0.0}
    assert (tmp_path / "models" / "hDQN_DiscreteStochasticDecisionProcess-v0_0_meta_Q").is_file()
