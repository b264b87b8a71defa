"""The two-view arms (`common.learning.algorithms`): what each view formulation and target rule feeds the loss,
and the equivalence that makes SQV's swap a relabelling under independent views, as a test that can fail."""
from types import SimpleNamespace

import pytest
import torch

from common.learning.algorithms import ALGORITHMS, BY_NAME, BY_PREFIX, OFFLINE, offline_algorithm
from common.learning.augment import RandomShift
from common.data.buffers import Batch
from common.training.config import defaults
from common.learning.swap import two_views
from discrete_SQV.sqv import SQV


def test_every_arm_is_defined_once_with_its_own_prefix_and_flags():
    assert len(BY_NAME) == len(BY_PREFIX) == len(ALGORITHMS)
    assert len({a.flags for a in ALGORITHMS}) == len(ALGORITHMS)
    arms = {(a.views, a.targets) for a in OFFLINE if a.two_views}
    assert arms == {(v, t) for v in ("independent", "clean") for t in ("swap", "own", "mean")}
    # the reference algorithms keep their flags and results prefixes
    assert offline_algorithm(None, None).prefix == "BCQ" and BY_NAME["sqv"].flags == ("--sqv",)
    assert offline_algorithm("independent", "swap").prefix == "SQV" and offline_algorithm(None, "swap").prefix == "SQV"
    assert offline_algorithm("independent", "mean") is BY_NAME["bcq-aug"] and BY_NAME["bcq-aug"].prefix == "BCQaug"


class Plus:
    """A deterministic 'augmentation': adds 100, 200, ... to successive equal blocks of its input."""

    def __call__(self, x):
        blocks = x.chunk(self.blocks)
        return torch.cat([block + 100 * (k + 1) for k, block in enumerate(blocks)])

    def __init__(self, blocks):
        self.blocks = blocks


@pytest.mark.parametrize("views, blocks", [("independent", 4), ("clean", 2)])
@pytest.mark.parametrize("targets", ["swap", "own", "mean"])
def test_two_views_pair_each_view_with_the_rule_s_target(views, blocks, targets):
    s, ns = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [4.0]])
    batch = Batch(s, torch.zeros(2, 1, dtype=torch.long), ns, torch.zeros(2, 1), torch.ones(2, 1))
    state, y = two_views(batch, Plus(blocks), lambda next_state, r, m: next_state, views, targets)
    if views == "independent":  # augment([s; s; s'; s']): s views +100, +200; s' views +300, +400
        assert state[:, 0].tolist() == [101, 102, 201, 202]
        y1, y2 = [303, 304], [403, 404]
    else:  # view 1 un-augmented; augment([s; s']): s +100, s' +200
        assert state[:, 0].tolist() == [1, 2, 101, 102]
        y1, y2 = [3, 4], [203, 204]
    expected = {"swap": y2 + y1, "own": y1 + y2, "mean": [(a + b) / 2 for a, b in zip(y1, y2)] * 2}[targets]
    assert y[:, 0].tolist() == expected


def minatar_batch(copies: int):
    """A MinAtar-shaped batch (sparse binary 4×6×6 images, s' = s moved right) repeated ``copies`` times:
    one loss then averages ``copies`` independent augmentation draws of each transition."""
    g = torch.Generator().manual_seed(1)
    state = (torch.rand(16, 4, 6, 6, generator=g) < 0.1).float()
    batch = (state, torch.randint(0, 3, (16, 1), generator=g), state.roll(1, dims=3), torch.randn(16, 1, generator=g),
             torch.ones(16, 1))
    return Batch(*(x.repeat(copies, *([1] * (x.dim() - 1))) for x in batch))


def paired_gradient_differences(views: str, draws: int = 100) -> torch.Tensor:
    """(draws, parameters): the loss gradient of swap minus that of own on a fixed network and batch, each
    pair with the same augmentation draw (common random numbers)."""
    batch = minatar_batch(8)
    grads = {}
    for targets in ("swap", "own"):
        torch.manual_seed(0)  # the same fixed network for both rules
        agent = SQV("image", (4, 6, 6), 3, SimpleNamespace(**defaults("regular", "image")), "cpu",
                    augment=RandomShift(1), views=views, targets=targets)
        params = list(agent.Q.parameters())
        rows = []
        for draw in range(draws):
            torch.manual_seed(1000 + draw)
            rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(agent.loss(batch)[0], params)]))
        grads[targets] = torch.stack(rows)
    return grads["swap"] - grads["own"]


def standard_errors_apart(differences: torch.Tensor) -> float:
    """‖mean difference‖ in units of its standard error, sqrt(Σ_j var_j / n): about 1 where the two
    rules have the same expected gradient, growing as √n where they do not."""
    n = differences.shape[0]
    return float(differences.mean(0).norm() / (differences.var(0).sum() / n).sqrt())


def test_swap_equals_own_in_expectation_under_independent_views_and_not_under_clean_views():
    """Independent views: view 1's (Q(aug₁ s), y(aug₄ s')) is distributed like (Q(aug₁ s), y(aug₃ s')), so the
    swap only relabels and E[∇ swap] = E[∇ own]. Clean views: Q(s) ← y(aug s') differs from Q(s) ← y(s')."""
    independent = standard_errors_apart(paired_gradient_differences("independent"))
    clean = standard_errors_apart(paired_gradient_differences("clean"))
    assert independent < 3, f"independent views: swap and own differ by {independent:.1f} standard errors"
    assert clean > 8, f"clean views: swap and own only {clean:.1f} standard errors apart"
