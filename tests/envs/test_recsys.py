"""The recommender: top-k retrieval, ranking metrics, the simulator, BCQ in item-embedding space, and
every stage on ItemRecommendation-v0."""
import json
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

import common.envs.make  # noqa: F401  (registers ItemRecommendation-v0)
from common.errors import UserError
from common.training.config import defaults
from common.envs.recsys import ItemRecommendation, ranking_metrics, top_k
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
        return np.linspace(-1, 1, 8, dtype=np.float32) * np.sin(env.unwrapped.steps)

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
    assert state.shape == env.observation_space.shape == (5 * 8,)
    np.testing.assert_array_equal(state.reshape(5, 8), env.item_embeddings[env.consumed])


def test_click_model_a_perfect_recommender_beats_random_and_clicked_items_become_the_history():
    env = ItemRecommendation()
    rng = np.random.default_rng(0)
    perfect, random = [], []
    for seed in range(30):
        for policy, totals in ((lambda: env.best_items(), perfect),
                               (lambda: rng.permutation(100)[:5], random)):
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


def test_every_stage_on_the_recommender_env(tmp_path):
    """DDPG → buffer → BCQ (item space) and SQV, tiny budgets, in-process; the report beside the results."""
    import main

    flags = ["--env", "ItemRecommendation-v0", "--out_dir", str(tmp_path), "--max_timesteps", "200",
             "--start_timesteps", "100", "--eval_freq", "100", "--eval_episodes", "1", "--batch_size", "16"]
    assert main.main(["--train_behavioral", *flags]) == 0
    assert main.main(["--generate_buffer", *flags]) == 0
    assert main.main([*flags, "--item_embeddings", "env"]) == 0
    assert main.main([*flags, "--sqv"]) == 0
    for algo in ("BCQ", "SQV"):
        report = json.loads((tmp_path / "results" / f"{algo}_ItemRecommendation-v0_0_recommendation.json").read_text())
        assert set(report) == {algo, "random", "most popular"}
        assert set(report[algo]) == {"clicks_per_episode", "clicks_std", "hit_rate@5", "ndcg@5", "episodes"}
    config = json.loads((tmp_path / "results" / "BCQ_ItemRecommendation-v0_0_config.json").read_text())
    assert config["discount"] == 0.9 and config["repeat_num"] == 20 and config["item_embeddings"] == "env"


def test_bad_item_embeddings_are_clear_errors(tmp_path, capsys):
    import main
    from common.envs.make import make_env
    from continuous_BCQ.family import item_embeddings

    info = make_env("ItemRecommendation-v0")
    cfg = SimpleNamespace(env="ItemRecommendation-v0", item_embeddings="env")
    np.testing.assert_array_equal(item_embeddings(info, cfg), info.env.unwrapped.item_embeddings)
    np.save(tmp_path / "wrong.npy", np.ones((10, 3), np.float32))
    np.save(tmp_path / "zero.npy", np.zeros((10, 8), np.float32))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    for value, message in ((str(tmp_path / "missing.npy"), "no such file"),
                           (str(tmp_path / "wrong.npy"), r"expected a float array of shape \(items, 8\)"),
                           (str(tmp_path / "zero.npy"), "finite and non-zero"),
                           (str(tmp_path / "junk.npy"), "not a readable .npy")):
        with pytest.raises(UserError, match=message):
            item_embeddings(info, SimpleNamespace(env="ItemRecommendation-v0", item_embeddings=value))
    with pytest.raises(UserError, match="exposes no item embeddings"):
        item_embeddings(make_env("Pendulum-v1"), SimpleNamespace(env="Pendulum-v1", item_embeddings="env"))
    assert main.main(["--env", "CartPole-v1", "--item_embeddings", "env", "--out_dir", str(tmp_path)]) == 2
    assert "applies to continuous-action envs" in capsys.readouterr().err
