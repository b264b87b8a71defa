"""Policy export: the TorchScript file, loaded in a fresh Python that cannot import this project, acts
as the project's own ``act_batch`` / ``recommend`` on 100 states; ``export_trained_policy`` end to end."""
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from common.errors import UserError
from common.reporting.export import export_policy, export_trained_policy
from common.training.config import defaults
from common.training.runtime import setting_name
from common.training.paths import model_prefix
from common.training.sources import open_env
from continuous_BCQ.bcq import BCQ as ContinuousBCQ
from continuous_BCQ.ddpg import DDPG
from discrete_SQV.bcq import BCQ, allowed_actions
from discrete_SQV.dqn import DQN

N, SEED = 100, 123  # states per case; the torch seed both sides set before continuous BCQ acts

CHILD = textwrap.dedent("""
    import importlib.util, os, sys
    sys.path.append(sys.argv[1])  # torch and numpy only: -S skipped every .pth, the project's editable install too
    assert all(importlib.util.find_spec(m) is None for m in ("common", "discrete_SQV", "continuous_BCQ"))
    try:
        import common
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the project is importable in the child")
    import numpy as np, torch
    torch.set_num_threads(1)
    for name in sys.argv[3:]:
        policy = torch.jit.load(f"{name}_policy.pt")
        states = torch.from_numpy(np.load(f"{name}_states.npy"))
        with torch.no_grad():
            torch.manual_seed(int(sys.argv[2]))
            np.save(f"{name}_actions.npy", policy(states).numpy())
            if os.path.exists(f"{name}_noise.npy"):
                np.save(f"{name}_given.npy", policy(states, torch.from_numpy(np.load(f"{name}_noise.npy"))).numpy())
""")


def sharpen_imitation(agent: BCQ, states: np.ndarray) -> None:
    """Scale the imitation head's last layer so the mask excludes actions, including the argmax of Q on some states."""
    agent.Q.imitation_head[-1].weight.data.mul_(30)
    with torch.no_grad():
        q, logits = agent.Q(torch.as_tensor(states).float())
    mask = allowed_actions(logits, agent.threshold)
    assert (~mask).any() and not mask.gather(1, q.argmax(1, keepdim=True)).all()


def cases():
    """name → (agent, 100 raw states, k), built with the project's constructors and default configs (the
    image case with pixel_scale 0.5: the exported module must convert and scale raw uint8 grids itself)."""
    rng = np.random.default_rng(0)
    regular, image, continuous = (SimpleNamespace(**defaults("regular", "vector")),
                                  SimpleNamespace(**{**defaults("regular", "image"), "pixel_scale": 0.5}),
                                  SimpleNamespace(**defaults("continuous")))
    torch.manual_seed(0)
    cartpole = rng.normal(size=(N, 4)).astype(np.float32)
    minatar = rng.integers(0, 2, (N, 4, 10, 10)).astype(np.uint8)  # `ChannelsFirst` MinAtar grids
    bcq, bcq_image = BCQ("vector", (4,), 2, regular, "cpu"), BCQ("image", (4, 10, 10), 6, image, "cpu")
    sharpen_imitation(bcq, cartpole)
    sharpen_imitation(bcq_image, minatar)
    items = rng.normal(size=(100, 8)).astype(np.float32)
    pendulum = rng.normal(size=(N, 3)).astype(np.float32)
    recommender = SimpleNamespace(**{**vars(continuous), "repeat_num": 20})  # what --item_embeddings sets
    return {
        "bcq": (bcq, cartpole, None),
        "bcq_image": (bcq_image, minatar, None),
        "dqn": (DQN("vector", (4,), 2, regular, "cpu"), cartpole, None),
        "continuous": (ContinuousBCQ(3, 1, np.array([2.0], np.float32), continuous, "cpu"), pendulum, None),
        "ddpg": (DDPG(3, 1, np.array([2.0], np.float32), continuous, "cpu"), pendulum, None),
        "recommender": (ContinuousBCQ(40, 8, np.ones(8, np.float32), recommender, "cpu", items=items),
                        items[rng.integers(0, 100, (N, 5))].reshape(N, 40), 5),  # histories of 5 consumed items
    }


def project_actions(agent, states: np.ndarray, k: int | None) -> np.ndarray:
    torch.manual_seed(SEED)
    return agent.recommend(states, k) if k is not None else agent.act_batch(states)


def test_exported_policies_act_as_the_project_in_a_fresh_process_without_it(tmp_path):
    built = cases()
    for name, (agent, states, k) in built.items():
        assert export_policy(agent, states[:2], str(tmp_path / name), k)[0] == str(tmp_path / f"{name}_policy.pt")
        np.save(tmp_path / f"{name}_states.npy", states)
        if isinstance(agent, ContinuousBCQ):  # the latents act_batch draws after torch.manual_seed(SEED)
            torch.manual_seed(SEED)
            np.save(tmp_path / f"{name}_noise.npy", torch.randn(N * agent.repeat_num, agent.vae.latent_dim).numpy())
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    (tmp_path / "child.py").write_text(CHILD)
    site = os.path.dirname(os.path.dirname(torch.__file__))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    child = subprocess.run([sys.executable, "-I", "-S", "child.py", site, str(SEED), *built], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    for name, (agent, states, k) in built.items():
        expected, got = project_actions(agent, states, k), np.load(tmp_path / f"{name}_actions.npy")
        assert got.shape == expected.shape and got.dtype == expected.dtype, name
        assert len({tuple(np.atleast_1d(a)) for a in expected}) > 1, name  # the states do not all get one action
        check = (np.testing.assert_array_equal if k is not None or not expected.dtype.kind == "f" else
                 lambda a, b, err_msg: np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=err_msg))
        check(got, expected, err_msg=name)
        if isinstance(agent, ContinuousBCQ):
            check(np.load(tmp_path / f"{name}_given.npy"), expected, err_msg=f"{name} (noise given)")


def config(env: str, profile: str, out_dir, **overrides) -> SimpleNamespace:
    base = defaults(profile, "vector", env)
    return SimpleNamespace(**{**base, "env": env, "seed": 0, "setting": setting_name(env, 0), "out_dir": str(out_dir),
                              "item_embeddings": None, "default_buffer_name": base["buffer_name"], **overrides})


def test_export_trained_policy_loads_a_saved_sqv_and_a_recommender(tmp_path):
    from continuous_BCQ import family as continuous
    from discrete_SQV import family as discrete

    cfg = config("CartPole-v1", "regular", tmp_path)
    with pytest.raises(UserError, match="train it first: python main.py --sqv --env CartPole-v1 --seed 0"):
        export_trained_policy(cfg, discrete, "SQV")
    info = open_env(cfg, discrete)
    buffer = SimpleNamespace(state=np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), size=8)
    torch.manual_seed(0)
    sqv = discrete.offline_agent("SQV", info, cfg, "cpu", buffer)
    sqv.save(model_prefix(cfg, "SQV"))
    paths = export_trained_policy(cfg, discrete, "SQV")
    assert paths[0] == model_prefix(cfg, "SQV") + "_policy.pt"
    states = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(torch.jit.load(paths[0])(torch.from_numpy(states)).numpy(), sqv.act_batch(states))

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "SQV_CartPole-v1_0_config.json").write_text('{"BCQ_threshold": 0.1, "pixel_scale": 1.0}')
    with pytest.raises(UserError, match=r"trained with --BCQ_threshold 0.1 \(given: 0.3\)"):
        export_trained_policy(cfg, discrete, "SQV")

    cfg = config("ItemRecommendation-v0", "continuous", tmp_path, item_embeddings="env", repeat_num=20)
    info = open_env(cfg, continuous)
    agent = continuous.offline_agent("BCQ", info, cfg, "cpu", None)
    agent.save(model_prefix(cfg, "BCQ"))
    policy = torch.jit.load(export_trained_policy(cfg, continuous, "BCQ")[0])
    states = np.stack([info.env.reset(seed=s)[0] for s in range(10)])
    torch.manual_seed(SEED)
    lists = policy(torch.from_numpy(states)).numpy()
    assert lists.shape == (10, info.env.unwrapped.k)
    np.testing.assert_array_equal(lists, project_actions(agent, states, info.env.unwrapped.k))
    info.env.close()


def test_onnx_files_act_as_the_project_where_onnx_and_onnxruntime_are_installed(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    for name, (agent, states, k) in cases().items():
        paths = export_policy(agent, states[:2], str(tmp_path / name), k)
        assert paths == [str(tmp_path / f"{name}_policy.pt"), str(tmp_path / f"{name}_policy.onnx")], name
        feeds = {"states": states}
        if isinstance(agent, ContinuousBCQ):  # ONNX takes the latent noise as an input
            torch.manual_seed(SEED)
            feeds["noise"] = torch.randn(N * agent.repeat_num, agent.vae.latent_dim).numpy()
        got, expected = ort.InferenceSession(paths[1]).run(None, feeds)[0], project_actions(agent, states, k)
        if expected.dtype.kind == "f" and k is None:
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
