"""``--export_policy``: a trained greedy policy as a self-contained TorchScript file (and ONNX where
the ``onnx`` package is installed), loadable with plain PyTorch and no copy of this project.

`policy_module(agent)` rebuilds what ``agent.act_batch`` computes in evaluation (no ε) from plain torch
modules on the CPU: discrete DQN/SQIL argmax Q, discrete BCQ/SQV argmax Q over the mask
π(a|s)/max π > τ, continuous BCQ (decode ``repeat_num`` actions per state, perturb, keep the highest
Q1), its recommender top-k item indices, and DDPG's actor. Inputs are raw observations as this
project's envs return them (vectors; MinAtar's channels-first uint8 grids; Atari's preprocessed
4×84×84 uint8 stacks): the float conversion and ``pixel_scale`` are inside the module.

Continuous BCQ samples its VAE latents when acting, z ~ N(0, 1) clipped to [−0.5, 0.5]. The exported
module takes them as an optional second input ``noise`` (standard-normal draws, one row per
candidate, clipped inside); without it the module draws them from torch's global generator exactly
as ``BCQ.act_batch`` does, so after the same ``torch.manual_seed`` both give the same actions.
"""
from __future__ import annotations

import copy
import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from common.io import atomic_open
from common.reporting.trained import check_acting_flags, trained_agent


def plain_copy(module: nn.Module) -> nn.Module:
    """A frozen CPU copy with every `common.learning.nets.Linear` made a plain ``nn.Linear`` (same weights;
    its oneDNN path is not scriptable and not in every PyTorch build) of Python-int sizes (a gym
    action count is a NumPy integer, which TorchScript refuses as a constant). Draws no random
    numbers: the global torch generator is left as it was."""
    module = copy.deepcopy(module).cpu().eval().requires_grad_(False)
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear) and type(child) is not nn.Linear:
                linear = nn.Linear(int(child.in_features), int(child.out_features), child.bias is not None,
                                   device="meta")
                linear.load_state_dict(child.state_dict(), assign=True)
                setattr(parent, name, linear.requires_grad_(False))
    return module


class GreedyQ(nn.Module):
    """argmax_a Q(s, a) of a `DiscreteNet` (DQN, SQIL): (B, *obs) of any dtype → (B,) int64."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.trunk, self.q_head = plain_copy(net.trunk), plain_copy(net.q_head)
        self.images, self.scale = bool(net.images), float(net.scale)

    def features(self, states: torch.Tensor) -> torch.Tensor:
        x = states.float()  # as `DiscreteNet.inputs` (images: float32 channels-last), then pixel_scale
        if self.images:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.scale != 1.0:
            x = x * self.scale
        return self.trunk(x)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.q_head(self.features(states)).argmax(1)


class MaskedGreedyQ(GreedyQ):
    """Discrete BCQ/SQV: argmax of Q over M(s) = {a : π(a|s)/max_b π(b|s) > τ}, π = softmax(imitation logits)."""

    def __init__(self, net: nn.Module, threshold: float):
        super().__init__(net)
        self.imitation_head = plain_copy(net.imitation_head)
        self.log_threshold = math.log(threshold) if threshold > 0 else -math.inf

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        features = self.features(states)
        q = self.q_head(features)
        log_pi = F.log_softmax(self.imitation_head(features), dim=1)
        allowed = log_pi - log_pi.max(1, keepdim=True).values > self.log_threshold
        return q.masked_fill(~allowed, -math.inf).argmax(1)


class DeterministicActor(nn.Module):
    """DDPG: max_action·tanh(μ(s)), (B, state_dim) → (B, action_dim) float32."""

    def __init__(self, actor: nn.Module):
        super().__init__()
        self.net = plain_copy(actor.net)
        self.register_buffer("max_action", actor.max_action.detach().float().cpu().clone())

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.max_action * torch.tanh(self.net(states.float()))


class ContinuousBCQPolicy(nn.Module):
    """Continuous BCQ acting: ``repeat_num`` actions decoded by the VAE per state, each perturbed by
    ξ, the one with the highest Q1 kept. ``forward(states, noise=None)`` → (B, action_dim) float32;
    ``noise`` is (B·repeat_num, latent_dim) standard-normal draws (rows state-major, as
    ``repeat_interleave`` orders the candidates), or None to draw them from the global generator."""

    def __init__(self, agent):
        super().__init__()
        self.decoder, self.perturb = plain_copy(agent.vae.decoder), plain_copy(agent.actor.net)
        self.q1 = plain_copy(agent.critic.heads[0])
        self.register_buffer("max_action", agent.vae.max_action.detach().float().cpu().clone())
        self.register_buffer("bound", agent.actor.max_action.detach().float().cpu().clone())
        self.phi, self.repeat_num = float(agent.actor.phi), int(agent.repeat_num)
        self.latent_dim = int(agent.vae.latent_dim)

    def best_actions(self, states: torch.Tensor, noise: Optional[torch.Tensor]) -> torch.Tensor:
        n = states.shape[0]
        repeated = torch.repeat_interleave(states.float(), self.repeat_num, 0)
        if noise is None:
            noise = torch.randn([repeated.shape[0], self.latent_dim], device=repeated.device)
        z = noise.reshape(repeated.shape[0], self.latent_dim).clamp(-0.5, 0.5)
        decoded = self.max_action * torch.tanh(self.decoder(torch.cat([repeated, z], 1)))
        delta = self.phi * self.bound * torch.tanh(self.perturb(torch.cat([repeated, decoded], 1)))
        actions = torch.clamp(decoded + delta, -self.bound, self.bound)
        best = self.q1(torch.cat([repeated, actions], 1)).view(n, self.repeat_num).argmax(1)
        candidates = actions.view(n, self.repeat_num, -1)
        return candidates.gather(1, best.view(n, 1, 1).expand(n, 1, candidates.shape[2]))[:, 0]

    def forward(self, states: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.best_actions(states, noise)


class TopKRecommender(ContinuousBCQPolicy):
    """Continuous BCQ as a recommender: the ``k`` items (B, k) int64, best first, most cosine-similar
    to the chosen action (`common.envs.recsys.top_k`: equal scores go to the lower item index)."""

    def __init__(self, agent, k: int):
        super().__init__(agent)
        from common.envs.recsys import unit

        n = agent.items.shape[0]
        if not 1 <= k <= n:
            raise UserError(f"cannot recommend k={k} items from a catalog of {n}; use 1 <= k <= {n}")
        self.register_buffer("items", unit(agent.items.detach().float().cpu()))  # as top_k normalizes them
        self.k = int(k)

    def forward(self, states: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        scores = F.normalize(self.best_actions(states, noise), dim=-1) @ self.items.T
        if not torch.jit.is_scripting():
            if torch.onnx.is_in_onnx_export():  # ONNX has no stable sort; its TopK breaks ties by the lower index
                return torch.topk(scores, self.k, dim=1).indices
        return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :self.k]


def policy_module(agent, k: int | None = None) -> nn.Module:
    """The agent's greedy policy as a self-contained CPU module in eval mode (a batch of raw
    observations in, a batch of actions out). ``k``: for a recommender (continuous BCQ with item
    embeddings), return the top-k item indices instead of the action vector."""
    from continuous_BCQ.bcq import BCQ as ContinuousBCQ
    from continuous_BCQ.ddpg import DDPG
    from discrete_SQV.bcq import BCQ as DiscreteBCQ
    from discrete_SQV.dqn import DQN

    if k is not None and getattr(agent, "items", None) is None:
        raise UserError("top-k export needs a recommender (continuous BCQ/SQV trained with --item_embeddings)")
    if isinstance(agent, DiscreteBCQ):
        module = MaskedGreedyQ(agent.Q, agent.threshold)
    elif isinstance(agent, DQN):  # DQN and SQIL: greedy in evaluation
        module = GreedyQ(agent.Q)
    elif isinstance(agent, ContinuousBCQ):
        module = ContinuousBCQPolicy(agent) if k is None else TopKRecommender(agent, k)
    elif isinstance(agent, DDPG):
        module = DeterministicActor(agent.actor)
    else:
        raise UserError(f"no policy export for {type(agent).__name__}")
    return module.eval()


def _inputs(module: nn.Module, states: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The example inputs of ``module``: the states, plus fixed latent noise for continuous BCQ."""
    if isinstance(module, ContinuousBCQPolicy):
        generator = torch.Generator().manual_seed(0)
        return states, torch.randn(states.shape[0] * module.repeat_num, module.latent_dim, generator=generator)
    return (states,)


def export_policy(agent, example_states: np.ndarray, path_prefix: str, k: int | None = None) -> list[str]:
    """Write ``{path_prefix}_policy.pt`` (TorchScript) and, when ``onnx`` is installed,
    ``{path_prefix}_policy.onnx``, each atomically; returns the paths written. ``example_states`` (a
    batch of raw observations) checks the scripted module against the eager one and fixes the ONNX
    input dtype. The ONNX graph is traced with the latent noise given: continuous BCQ's takes
    ``noise`` as a required second input (the TorchScript file's is optional)."""
    module = policy_module(agent, k)
    example = _inputs(module, torch.as_tensor(np.asarray(example_states)))
    scripted = torch.jit.script(module)
    with torch.no_grad():
        expected, got = module(*example), scripted(*example)
    if not (torch.allclose(expected, got, rtol=0, atol=1e-6) if expected.is_floating_point()
            else torch.equal(expected, got)):
        raise RuntimeError("the scripted policy disagrees with the eager one on the example states")
    paths = [f"{path_prefix}_policy.pt"]
    with atomic_open(paths[0]) as f:
        torch.jit.save(scripted, f)
    try:
        import onnx  # noqa: F401
    except ImportError:
        return paths
    path = f"{path_prefix}_policy.onnx"
    names = ["states", "noise"][:len(example)]
    try:
        with atomic_open(path) as f:
            torch.onnx.export(module, example, f, dynamo=False, input_names=names, output_names=["actions"],
                              dynamic_axes={**{name: {0: "batch"} for name in names}, "actions": {0: "batch"}})
    except Exception as err:  # e.g. an op without an ONNX equivalent
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        print(f"[export] no ONNX file for {type(module).__name__} ({reason}); the TorchScript file stands alone")
    else:
        paths.append(path)
    return paths


def export_trained_policy(cfg, family, algo_prefix: str) -> list[str]:
    """``--export_policy``: load ``models/{algo_prefix}_{setting}_*`` on the CPU and write
    ``models/{algo_prefix}_{setting}_policy.pt`` (and ``.onnx`` with onnx installed); returns the paths.
    A recommender (``--item_embeddings`` on ItemRecommendation-v0) exports its top-k lists (the env's k);
    on other envs an ``--item_embeddings`` agent exports its action vectors, which those envs take."""
    from common.envs.recsys import ItemRecommendation
    from common.training.paths import model_prefix
    from common.training.sources import open_env

    check_acting_flags(cfg, algo_prefix)
    info = open_env(cfg, family)
    try:
        agent = trained_agent(cfg, family, info, torch.device("cpu"), algo_prefix)
        states = info.env.reset(seed=cfg.seed)[0][None]
        sim = getattr(info.env, "unwrapped", info.env)
        k = sim.k if isinstance(sim, ItemRecommendation) and getattr(agent, "items", None) is not None else None
        paths = export_policy(agent, states, model_prefix(cfg, algo_prefix), k)
    finally:
        info.env.close()
    print(f"[export] {algo_prefix} policy for {cfg.setting}: {', '.join(paths)}")
    return paths
