"""Vectorized envs: ale-py's vector env against our Atari preprocessing, evaluation with N envs
against one env, and buffers written by N envs holding exactly the stacks each env saw."""
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from common.data.buffers import FrameStackBuffer
from common.envs.make import make_env
from common.training.config import defaults
from common.training.runtime import evaluate
from common.training.rollout import Rollout, interact
from common.envs.vector import make_vec_env


class NoBar:
    notes: dict = {}

    def update(self, *_):
        pass

    def set_postfix(self, *_, **__):
        pass


def atari_cfg(**overrides):
    return SimpleNamespace(**{**defaults("atari"), "seed": 0, **overrides})


@pytest.mark.parametrize("env_id", ["PongNoFrameskip-v4", "BreakoutNoFrameskip-v4"])
def test_ale_vector_env_reproduces_our_atari_preprocessing(env_id):
    """Same frames, rewards and terminals for 300 steps of random actions (docs/DESIGN.md §5), except the
    frame after a terminal step, which no learner uses (not_done = 0, and the frame-stacked buffer
    never stores it): ALE's max-pool there differs from ours."""
    cfg = atari_cfg()
    single, vec = make_env(env_id, cfg).env, make_vec_env(env_id, cfg, 2)
    state, states = single.reset(seed=3)[0], vec.reset(seeds=[3, 4])
    np.testing.assert_array_equal(state, states[0])
    assert state[1:].max() == 0  # zeros before the first frame, index 0 newest
    rng = np.random.default_rng(0)
    for t in range(300):
        action = int(rng.integers(single.action_space.n))
        state, reward, terminated, truncated, _ = single.step(action)
        states, rewards, terminateds, truncateds = vec.step(np.array([action, action]))
        assert (reward, terminated, truncated) == (rewards[0], terminateds[0], truncateds[0]), t
        if terminated:
            np.testing.assert_array_equal(state[1:], states[0][1:])
            state, states = single.reset(seed=5)[0], vec.reset(np.array([True, False]), [5, None])
        np.testing.assert_array_equal(state, states[0], err_msg=f"step {t}")
    vec.close()


def test_ale_vector_env_truncates_at_max_episode_timesteps():
    vec = make_vec_env("PongNoFrameskip-v4", atari_cfg(max_episode_timesteps=5), 1)
    vec.reset(seeds=[0])
    flags = [vec.step(np.array([0]))[2:] for _ in range(5)]
    assert [bool(t) for _, t in flags] == [False] * 4 + [True] and not any(te for te, _ in flags)


@pytest.mark.parametrize("env_id, eval_eps", [("CartPole-v1", 0.3), ("ALE/Breakout-v5", 0.5)])
def test_evaluation_with_n_envs_matches_one_env(env_id, eval_eps):
    """Per-episode returns are the same whatever the number of envs (ALE v5 ids have sticky actions)."""
    cfg = atari_cfg(max_episode_timesteps=200) if "ALE" in env_id else None
    weights = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))

    def policy(states):  # deterministic; Atari: act on a few pixels so that episodes differ
        if states.ndim == 2:
            return (torch.as_tensor(states, dtype=torch.float32) @ weights).argmax(1).numpy()
        return (states[:, 0, 40:60, 20:60].reshape(len(states), -1).sum(1) // 7 % 4).astype(np.int64)

    runs = {n: evaluate(policy, lambda k: make_vec_env(env_id, cfg, k), seed=1, episodes=5, eval_eps=eval_eps,
                        num_envs=n) for n in (1, 3)}
    np.testing.assert_array_equal(runs[1], runs[3])
    assert len(set(runs[1].tolist())) > 1  # the episodes really differ, so a mix-up would show


def test_buffer_from_n_envs_holds_the_stacks_each_env_saw():
    """Three Pong envs with 40-step episodes write one frame-stacked buffer; every sampleable index
    rebuilds an (s, s') pair that one env really produced, and every non-final pair is there."""
    cfg = atari_cfg(max_episode_timesteps=40)
    vec = make_vec_env("PongNoFrameskip-v4", cfg, 3)
    seen = Counter()
    step = vec.step

    def recording_step(actions):  # remember every (s, s') pair the envs produced, as bytes
        before = recording_step.states
        after, *rest = step(actions)
        seen.update([(b.tobytes(), a.tobytes()) for b, a in zip(before, after)])
        recording_step.states = after
        return (after, *rest)

    reset = vec.reset

    def recording_reset(mask=None, seeds=None):
        recording_step.states = reset(mask, seeds)
        return recording_step.states

    vec.step, vec.reset = recording_step, recording_reset
    buffer = FrameStackBuffer((4, 84, 84), 1000, 32, "cpu", np.random.default_rng(0))
    rng = np.random.default_rng(0)
    interact(vec, Rollout(cfg, buffer, NoBar(), lambda states, t: rng.integers(6, size=len(states))), 300)
    index = np.flatnonzero(buffer.sampleable(np.arange(buffer.size)))
    state, next_state = buffer.stacks(index)
    stored = Counter((s.to(torch.uint8).numpy().tobytes(), n.to(torch.uint8).numpy().tobytes())
                     for s, n in zip(state, next_state))
    assert buffer.size == 300 and stored <= seen  # each pair at most as often as the envs produced it
    # 300 transitions in episodes of 40 steps: each truncated last step, the unfinished episodes'
    # last steps and the buffer's newest row are not sampleable; all the others are.
    assert len(index) >= 300 - 300 // 40 - 3 - 1
