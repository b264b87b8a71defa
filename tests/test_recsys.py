"""The recommender: top-k retrieval, ranking metrics, the simulator, BCQ in item-embedding space, and
every stage on ItemRecommendation-v0."""
import json
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

import common.envs  # noqa: F401  (registers ItemRecommendation-v0)
from common.errors import UserError
from common.params import defaults
from common.recsys import ItemRecommendation, ranking_metrics, top_k
from continuous_BCQ.bcq import BCQ


def test_top_k_ranks_by_cosine_breaks_ties_by_index_and_rejects_large_k():
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [10.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    # (3, 0.1) points at items 0 and 2 (a tie: cosine 1 for both, whatever their norms), then item 4.
    torch.testing.assert_close(top_k(torch.tensor([[3.0, 0.1]]), items, 3), torch.tensor([[0, 2, 4]]))
    # Scale does not matter, only direction.
    assert top_k(torch.tensor([[0.01, 0.01]]), items, 1).item() == 4
    assert top_k(torch.tensor([[-5.0, 0.0]]), items, 1).item() == 3
    # An all-zero action scores 0 against every item: the first k by index.
    torch.testing.assert_close(top_k(torch.zeros(1, 2), items, 2), torch.tensor([[0, 1]]))
    with pytest.raises(UserError, match="k=6 items from a catalog of 5"):
        top_k(torch.ones(1, 2), items, 6)


def test_ranking_metrics_on_hand_built_lists():
    recommended = np.array([[3, 1, 2], [0, 4, 5], [7, 8, 9]])
    best = np.array([3, 5, 1])  # rank 0, rank 2, missing
    hit_rate, ndcg = ranking_metrics(recommended, best)
    assert hit_rate == pytest.approx(2 / 3)
    assert ndcg == pytest.approx((1.0 + 1.0 / np.log2(4) + 0.0) / 3)


def run_episode(env, seed, policy):
    state, _ = env.reset(seed=seed)
    trace, done = [state], False
    while not done:
        state, reward, terminated, truncated, info = env.step(policy(env))
        trace += [state, reward, info["recommended"], info["clicked"]]
        done = terminated or truncated
    return trace


def test_simulator_is_deterministic_under_a_seed_and_has_fixed_length_episodes():
    def policy(env):
        return np.linspace(-1, 1, 32, dtype=np.float32) * np.sin(env.unwrapped.steps)

    a = run_episode(gym.make("ItemRecommendation-v0"), 7, policy)
    b = run_episode(gym.make("ItemRecommendation-v0"), 7, policy)
    c = run_episode(gym.make("ItemRecommendation-v0"), 8, policy)
    assert len(a) == 1 + 4 * 20
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    env = gym.make("ItemRecommendation-v0").unwrapped
    other = gym.make("ItemRecommendation-v0").unwrapped
    np.testing.assert_array_equal(env.item_embeddings, other.item_embeddings)  # one catalog for every episode
    np.testing.assert_allclose(np.linalg.norm(env.item_embeddings, axis=1), 1.0, rtol=1e-6)
    state, _ = env.reset(seed=0)
    assert state.shape == env.observation_space.shape == (5 * 32,)
    np.testing.assert_array_equal(state.reshape(5, 32), env.item_embeddings[env.consumed])


def test_click_model_a_perfect_recommender_beats_random_and_clicked_items_become_the_history():
    env = ItemRecommendation()
    rng = np.random.default_rng(0)
    perfect, random = [], []
    for seed in range(30):
        for policy, totals in ((lambda: env.best_items(), perfect),
                               (lambda: rng.permutation(200)[:5], random)):
            env.reset(seed=seed)
            total, done = 0.0, False
            while not done:
                items = policy()
                _, reward, _, done, info = env.step_items(items)
                assert reward == info["clicked"].sum()
                clicked = list(items[info["clicked"]][::-1])
                assert env.consumed[:len(clicked)] == clicked[:5]
                total += reward
            totals.append(total)
    assert np.mean(perfect) > 3 * np.mean(random)
    assert np.mean(perfect) > 10


def test_bcq_in_item_space_trains_on_logged_items_and_recommends_top_k():
    items = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]], dtype=np.float32)
    cfg = SimpleNamespace(**{**defaults("continuous"), "repeat_num": 20})
    agent = BCQ(3, 2, np.ones(2, np.float32), cfg, torch.device("cpu"), items=items)
    logged = agent.logged_items(torch.tensor([[0.9, 0.2], [0.1, 0.5], [-3.0, 1.0]]))
    torch.testing.assert_close(logged, torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))  # unit embeddings
    states = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    torch.manual_seed(0)
    lists = agent.recommend(states, 2)
    torch.manual_seed(0)  # acting samples from the VAE: same seed, same actions
    expected = top_k(torch.as_tensor(agent.act_batch(states)), torch.as_tensor(items), 2)
    assert lists.shape == (4, 2) and lists.dtype == np.int64
    np.testing.assert_array_equal(lists, expected.numpy())
