"""Fitted Q Evaluation against values computed exactly by dynamic programming, and the --fqe stage."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from common.data.buffers import ReplayBuffer
from common.training.config import defaults
from common.envs.sdp import N_STATES, DiscreteStochasticDecisionProcess
from discrete_SQV.fqe import FQE

GAMMA = 0.9


def markov_observation(env) -> np.ndarray:
    """The decision process's one-hot state plus its 'visited s6' flag: with the flag observed the reward
    is a function of the observation, so the process is an MDP whose values DP computes exactly."""
    return np.concatenate([env.observe(), [float(env.visited_s6)]]).astype(np.float32)


def exact_value(policy) -> float:
    """V^π(s2, not visited) by value iteration over (state, visited); ``policy(states, visited)`` → actions."""
    value = np.zeros((N_STATES, 2))
    for _ in range(500):
        new = np.zeros_like(value)
        for pos in range(1, N_STATES):
            for visited in (0, 1):
                right = int(policy(torch.tensor([pos]), torch.tensor([visited]))[0])
                moves = [(0.5, min(pos + 1, N_STATES - 1)), (0.5, pos - 1)] if right else [(1.0, pos - 1)]
                for p, nxt in moves:
                    seen = int(visited or nxt == N_STATES - 1)
                    new[pos, visited] += p * ((1.0 if seen else 0.01) if nxt == 0 else GAMMA * value[nxt, seen])
        value = new
    return float(value[1, 0])


def random_play_buffer(transitions: int = 20_000) -> ReplayBuffer:
    """Uniformly random actions, episodes truncated (not terminated) after 100 steps."""
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer((N_STATES + 1,), transitions, 256, "cpu", rng)
    env = DiscreteStochasticDecisionProcess()
    env.reset(seed=0)
    state, t = markov_observation(env), 0
    for _ in range(transitions):
        action = int(rng.integers(2))
        _, reward, terminated, _, _ = env.step(action)
        next_state, t = markov_observation(env), t + 1
        buffer.add(state, action, next_state, reward, float(not terminated))
        if terminated or t == 100:
            env.reset()
            next_state, t = markov_observation(env), 0
        state = next_state
    return buffer


@pytest.mark.parametrize("name, policy, steps", [
    ("right until s6, then left", lambda pos, visited: (visited == 0).long(), 3000),
    ("always left", lambda pos, visited: torch.zeros_like(pos), 1000),
])
def test_fqe_estimates_the_exact_value_of_a_fixed_policy(name, policy, steps):
    torch.manual_seed(0)
    cfg = SimpleNamespace(**{**defaults("regular", "vector"), "discount": GAMMA, "lr": 5e-4,
                             "polyak_target_update": False, "target_update_freq": 100})
    fqe = FQE("vector", (N_STATES + 1,), 2, cfg, "cpu", lambda s: policy(s[:, :N_STATES].argmax(1), s[:, N_STATES]))
    buffer = random_play_buffer()
    for _ in range(steps):
        fqe.train(buffer)
    start = torch.tensor([[0, 1, 0, 0, 0, 0, 0]], dtype=torch.float32)  # s2, s6 not visited
    exact = exact_value(policy)
    assert fqe.value(start).item() == pytest.approx(exact, abs=0.01), name  # exact: 0.0689 and 0.01


def test_fqe_stage_writes_the_estimate_beside_the_measured_return(reference_buffer):
    import json
    import subprocess
    import sys

    from conftest import ROOT

    def main(*args):
        return subprocess.run([sys.executable, f"{ROOT}/main.py", "--env", "CartPole-v1", "--out_dir",
                               str(reference_buffer), "--max_timesteps", "40", "--eval_freq", "40", "--eval_episodes",
                               "2", "--log_freq", "20", *args], capture_output=True, text=True, timeout=300)

    missing = main("--fqe", "--sqv")
    assert missing.returncode == 2 and "no trained SQV model" in missing.stderr and "--sqv" in missing.stderr
    assert main("--sqv").returncode == 0
    result = main("--fqe", "--sqv")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((reference_buffer / "results" / "FQE_SQV_CartPole-v1_0.json").read_text())
    assert report["policy"] == "SQV" and report["updates"] == 40 and len(report["estimated_values"]) == 2
    assert len(report["discounted_returns"]) == 2 and all(0 < g <= 100 for g in report["discounted_returns"])
    train = (reference_buffer / "results" / "FQE_SQV_CartPole-v1_0_train.csv").read_text().splitlines()
    assert train[0].startswith("step,wall_seconds,q_loss") and len(train) == 3  # updates 20 and 40 logged
