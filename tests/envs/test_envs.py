"""Atari preprocessing against a by-hand reference, truncation, MinAtar images, env kinds, names."""
import cv2
import gymnasium as gym
import numpy as np
import pytest

from common.envs.make import ATARI, IMAGE, VECTOR, AtariPreprocessing, env_kind, make_env
from common.errors import UserError
from common.training.runtime import setting_name


def reference_frames(env_id, actions, seed, frame_skip=4):
    """The docs/DESIGN.md §5 recipe by hand: raw grayscale screens, max of the last two, area resize."""
    raw = gym.make(env_id, obs_type="grayscale", frameskip=1).unwrapped
    screen, _ = raw.reset(seed=seed)
    frames, rewards = [cv2.resize(screen, (84, 84), interpolation=cv2.INTER_AREA)], []
    for a in actions:
        screens, total = [], 0.0
        for _ in range(frame_skip):
            screen, r, term, trunc, _ = raw.step(a)
            screens.append(screen)
            total += r
        frames.append(cv2.resize(np.maximum(screens[-2], screens[-1]), (84, 84), interpolation=cv2.INTER_AREA))
        rewards.append(total)
    return frames, rewards


def test_atari_preprocessing_matches_reference_recipe():
    actions = [0, 2, 3, 2, 2, 3, 1, 0, 3, 2, 2, 2]
    expected, expected_rewards = reference_frames("PongNoFrameskip-v4", actions, seed=3)
    env = AtariPreprocessing("PongNoFrameskip-v4")
    state, _ = env.reset(seed=3)
    assert state.shape == (4, 84, 84) and state.dtype == np.uint8
    np.testing.assert_array_equal(state[0], expected[0])
    assert not state[1:].any()  # zeros before the first frame
    for t, a in enumerate(actions, start=1):
        state, reward, terminated, truncated, _ = env.step(a)
        assert reward == expected_rewards[t - 1] and not terminated and not truncated
        for h in range(4):  # index 0 newest
            want = expected[t - h] if t - h >= 0 else np.zeros((84, 84), np.uint8)
            np.testing.assert_array_equal(state[h], want)


def test_atari_truncation_is_not_terminal():
    env = AtariPreprocessing("PongNoFrameskip-v4", max_episode_timesteps=5)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(5)]
    assert flags[:4] == [(False, False)] * 4 and flags[4] == (False, True)


def test_ale_v5_ids_do_not_skip_frames_twice():
    info = make_env("ALE/Pong-v5")
    assert info.kind == ATARI and info.state_shape == (4, 84, 84)
    assert info.env.env._frameskip == 1 and info.env.frame_skip == 4


def test_minatar_is_a_channels_first_image():
    info = make_env("MinAtar/Breakout-v1")
    state, _ = info.env.reset(seed=0)
    assert info.kind == IMAGE and state.shape == info.state_shape == (4, 10, 10) and state.dtype == np.uint8


def test_env_kinds_and_unknown_ids():
    assert env_kind("CartPole-v1") == VECTOR and env_kind("AsterixNoFrameskip-v0") == ATARI
    with pytest.raises(UserError, match="unknown env id"):
        env_kind("NoSuchEnv-v9")


def test_setting_name_never_makes_subdirectories():
    assert setting_name("ALE/Pong-v5", 3) == "ALE_Pong-v5_3"
    assert setting_name("MinAtar/Breakout-v1", 0) == "MinAtar_Breakout-v1_0"
