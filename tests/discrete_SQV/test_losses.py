"""DQN target, BCQ mask/argmax/loss and the SQV swapped loss on hand-built batches."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from common.data.buffers import Batch
from discrete_SQV.bcq import BCQ, allowed_actions, masked_argmax
from discrete_SQV.dqn import DQN
from common.training.config import defaults
from discrete_SQV.sqv import SQV


def config(**overrides):
    return SimpleNamespace(**{**defaults("regular", "vector"), **overrides})


class Table(nn.Module):
    """A 'network' that looks its outputs up by state id (state = [[id]]): fixed q and logits."""

    def __init__(self, q, logits=None):
        super().__init__()
        self.q = torch.tensor(q, dtype=torch.float32)
        self.logits = None if logits is None else torch.tensor(logits, dtype=torch.float32)
        self.dummy = nn.Parameter(torch.zeros(()))

    def inputs(self, state):
        return state

    def forward(self, state, imitation=True):
        ids = state[:, 0].long()
        q = self.q[ids] + 0 * self.dummy
        return q, (None if self.logits is None or not imitation else self.logits[ids] + 0 * self.dummy)


def huber(x, y):
    d = abs(x - y)
    return 0.5 * d * d if d < 1 else d - 0.5


def test_dqn_target_and_loss():
    agent = DQN("vector", (1,), 3, config(discount=0.9), "cpu")
    agent.Q = Table([[1.0, 2.0, 3.0], [0.0, 0.5, -1.0]])
    agent.Q_target = Table([[0.0, 0.0, 0.0], [4.0, -2.0, 1.0]])
    batch = Batch(state=torch.tensor([[0.0], [0.0]]), action=torch.tensor([[2], [0]]),
                  next_state=torch.tensor([[1.0], [1.0]]), reward=torch.tensor([[1.0], [0.5]]),
                  not_done=torch.tensor([[1.0], [0.0]]))
    y = agent.target(batch.next_state, batch.reward, batch.not_done)
    torch.testing.assert_close(y, torch.tensor([[1 + 0.9 * 4.0], [0.5]]))
    loss, _ = agent.loss(batch)
    assert loss.item() == pytest.approx((huber(3.0, 4.6) + huber(1.0, 0.5)) / 2)


def test_bcq_mask_and_masked_argmax_on_hand_made_logits():
    # π ∝ exp(logits); ratio to the best action: row 0 → [1, e^-1 = 0.37, e^-2 = 0.14]
    logits = torch.tensor([[0.0, -1.0, -2.0], [3.0, 3.0, 3.0 + math.log(0.3) - 1e-4]])
    mask = allowed_actions(logits, 0.3)
    assert mask.tolist() == [[True, True, False], [True, True, False]]
    q = torch.tensor([[1.0, 5.0, 9.0], [2.0, 1.0, 100.0]])
    assert masked_argmax(q, mask)[:, 0].tolist() == [1, 0]
    assert allowed_actions(logits, 0.0).all()  # τ = 0: every action allowed (plain Q-learning)
    assert allowed_actions(logits, 1.0).sum(1).tolist() == [0, 0]  # strict '>' as in the reference


def hand_bcq_target(q_online, logits, q_target, r, m, gamma, tau=0.3):
    pi = [math.exp(v) for v in logits]
    allowed = [p / max(pi) > tau for p in pi]
    a_star = max((q for q in range(len(q_online)) if allowed[q]), key=lambda q: q_online[q])
    return r + m * gamma * q_target[a_star]


def hand_bcq_terms(q, logits, a, y):
    log_z = math.log(sum(math.exp(v) for v in logits))
    return huber(q[a], y), -(logits[a] - log_z), sum(v * v for v in logits) / len(logits)


def test_bcq_loss_equals_hand_computation():
    q_rows = [[1.0, 2.0, 3.0], [0.5, 4.0, -1.0]]
    logit_rows = [[0.0, -0.5, -3.0], [2.0, 0.0, 1.5]]
    target_rows = [[10.0, 20.0, 30.0], [-1.0, 7.0, 2.0]]
    agent = BCQ("vector", (1,), 3, config(discount=0.99), "cpu")
    agent.Q, agent.Q_target = Table(q_rows, logit_rows), Table(target_rows, logit_rows)
    batch = Batch(state=torch.tensor([[0.0], [1.0]]), action=torch.tensor([[1], [2]]),
                  next_state=torch.tensor([[1.0], [0.0]]), reward=torch.tensor([[0.5], [-1.0]]),
                  not_done=torch.tensor([[1.0], [0.0]]))
    ys = [hand_bcq_target(q_rows[1], logit_rows[1], target_rows[1], 0.5, 1.0, 0.99),  # a* = 0: action 1 (q 4) is masked
          hand_bcq_target(q_rows[0], logit_rows[0], target_rows[0], -1.0, 0.0, 0.99)]
    assert ys[0] == pytest.approx(0.5 + 0.99 * -1.0)
    torch.testing.assert_close(agent.target(batch.next_state, batch.reward, batch.not_done), torch.tensor([ys]).T)
    terms = [hand_bcq_terms(q_rows[k], logit_rows[k], a, ys[k]) for k, a in enumerate([1, 2])]
    expected = sum(sum(t[j] for t in terms) / 2 * (0.01 if j == 2 else 1) for j in range(3))
    loss, stats = agent.loss(batch)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert agent.greedy_actions(torch.tensor([[0.0], [1.0]])).tolist() == [1, 0]  # masked argmax


class Views:
    """A deterministic 'augmentation' of a batch of len(shifts) equal blocks: block k maps state id s
    to (s + shifts[k]) mod n."""

    def __init__(self, shifts, n):
        self.shifts, self.n = shifts, n

    def __call__(self, x):
        blocks = x.chunk(len(self.shifts))
        return torch.cat([(block + k) % self.n for block, k in zip(blocks, self.shifts)])


def test_sqv_loss_equals_swapped_formula_by_hand():
    q_rows = [[1.0, 2.0, 3.0], [0.5, 4.0, -1.0], [2.0, -2.0, 0.0], [0.0, 1.0, 1.5]]
    logit_rows = [[0.0, -0.5, -3.0], [2.0, 0.0, 1.5], [0.1, 0.2, 0.3], [-1.0, 1.0, 0.0]]
    target_rows = [[10.0, 20.0, 30.0], [-1.0, 7.0, 2.0], [3.0, 3.5, -4.0], [1.0, 0.0, 5.0]]
    gamma = 0.9
    agent = SQV("vector", (1,), 3, config(discount=gamma), "cpu")
    agent.Q, agent.Q_target = Table(q_rows, logit_rows), Table(target_rows, logit_rows)
    # SQV.loss augments [s; s; s'; s'] in one call: s view 1, s view 2, s' view 1, s' view 2
    shifts = [1, 2, 3, 0]
    agent.augment = Views(shifts, 4)
    s, a, ns, r, m = [0, 2], [1, 0], [1, 3], [1.0, -0.5], [1.0, 1.0]
    batch = Batch(torch.tensor([s], dtype=torch.float32).T, torch.tensor([a]).T,
                  torch.tensor([ns], dtype=torch.float32).T, torch.tensor([r]).T, torch.tensor([m]).T)

    def by_hand(target: str, target_rows=target_rows) -> float:
        total = 0.0
        for b in range(2):
            s1, s2 = (s[b] + shifts[0]) % 4, (s[b] + shifts[1]) % 4
            ns1, ns2 = (ns[b] + shifts[2]) % 4, (ns[b] + shifts[3]) % 4
            y1 = hand_bcq_target(q_rows[ns1], logit_rows[ns1], target_rows[ns1], r[b], m[b], gamma)
            y2 = hand_bcq_target(q_rows[ns2], logit_rows[ns2], target_rows[ns2], r[b], m[b], gamma)
            if target == "swap":  # SQV: view 1 regresses on y₂, view 2 on y₁
                y1, y2 = y2, y1
            elif target == "average":  # --aug: both views on (y₁ + y₂) / 2
                y1 = y2 = (y1 + y2) / 2
            h1, n1, reg1 = hand_bcq_terms(q_rows[s1], logit_rows[s1], a[b], y1)
            h2, n2, reg2 = hand_bcq_terms(q_rows[s2], logit_rows[s2], a[b], y2)
            total += (h1 + h2 + n1 + n2 + 0.01 * (reg1 + reg2)) / 2  # per-view means over B = 2
        return total

    loss, _ = agent.loss(batch)
    assert loss.item() == pytest.approx(by_hand("swap"), rel=1e-6)
    assert abs(by_hand("own") - by_hand("swap")) > 1e-3  # the swap matters on this batch
    # --aug: small targets keep the Huber loss quadratic, where averaging differs from each view's own target
    small = [[v / 20 for v in row] for row in target_rows]
    aug = SQV("vector", (1,), 3, config(discount=gamma), "cpu", targets="mean")  # --aug
    aug.Q, aug.Q_target, aug.augment = agent.Q, Table(small, logit_rows), agent.augment
    values = {t: by_hand(t, small) for t in ("swap", "average", "own")}
    assert aug.loss(batch)[0].item() == pytest.approx(values["average"], rel=1e-6)
    assert abs(values["average"] - values["own"]) > 1e-3 and abs(values["average"] - values["swap"]) > 1e-3


def test_epsilon_schedule_and_target_updates():
    agent = DQN("vector", (2,), 2, config(initial_eps=1.0, end_eps=0.1, eps_decay_period=10,
                                          polyak_target_update=False, target_update_freq=3), "cpu")
    agent.iterations = 5
    assert agent.epsilon() == pytest.approx(0.55)
    agent.iterations = 50
    assert agent.epsilon() == pytest.approx(0.1)
    with torch.no_grad():
        for p in agent.Q.parameters():
            p.add_(1.0)
    agent.iterations = 2
    agent.update_target()
    assert not torch.equal(agent.Q.q_head[0].weight, agent.Q_target.q_head[0].weight)
    agent.iterations = 3
    agent.update_target()
    assert torch.equal(agent.Q.q_head[0].weight, agent.Q_target.q_head[0].weight)
    polyak = DQN("vector", (2,), 2, config(polyak_target_update=True, tau=0.25), "cpu")
    before = polyak.Q_target.q_head[0].weight.clone()
    with torch.no_grad():
        polyak.Q.q_head[0].weight.add_(4.0)
    polyak.update_target()
    torch.testing.assert_close(polyak.Q_target.q_head[0].weight, before + 1.0)
