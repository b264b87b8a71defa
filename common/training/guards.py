"""What stops a run cleanly: Ctrl-C / SIGTERM (checkpoint, then exit) and non-finite losses."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from common.errors import UserError
from common.learning.agent import Agent


class Interrupted(Exception):
    """Raised by a stage after it saved a checkpoint because SIGINT or SIGTERM arrived."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum


class NonFiniteLoss(UserError):
    """A loss term became NaN or infinite; training stopped before it could use the garbage."""

    exit_code = 1


class StopFlag:
    signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """While active, SIGINT and SIGTERM only set ``flag.signum``: the training loop finishes the
    update in progress, saves a checkpoint and raises `Interrupted`. A second Ctrl-C stops at once."""
    flag = StopFlag()

    def handler(signum, frame):
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def value_bound(data, discount: float) -> float | None:
    """Ten times the largest return the training data's rewards allow, max|r| / (1 − γ) (|r| taken as
    at least 1): a mean Q beyond it has diverged even while it is finite. None when γ = 1."""
    if discount >= 1:
        return None
    rewards, size = getattr(data, "reward", None), getattr(data, "size", 0)
    scale = float(np.abs(rewards[:size]).max()) if rewards is not None and size else 1.0
    return 10 * max(scale, 1.0) / (1 - discount)


class FiniteGuard:
    """Watches every loss term of every update without a host/device round trip per update.

    ``update`` records, on the device, the first iteration at which any term was non-finite and
    which terms were (the terms may grow: h-DQN's meta-controller starts training after its
    controller). ``check`` (called at evaluations, log lines and before each checkpoint, so a
    checkpoint never holds a diverged model) reads that back, and also checks what the losses do
    not show: the weights the last update wrote (finite), and the learner's mean Q estimate under
    them (`Agent.current_value`, within `value_bound`); it raises `NonFiniteLoss` naming the iteration, the cause and the last good
    checkpoint.
    """

    def __init__(self, device):
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_terms = torch.zeros(0, dtype=torch.bool, device=device)
        self.names: list[str] = []

    def update(self, iteration: int, terms: dict[str, torch.Tensor]) -> None:
        if not terms:
            return
        finite = torch.stack([torch.isfinite(v).all() for v in terms.values()])
        if len(terms) != len(self.names):  # new terms come after the ones already watched
            self.names = list(terms)
            self.bad_terms = torch.cat([self.bad_terms, self.bad_terms.new_zeros(len(terms) - len(self.bad_terms))])
        new = (self.first_bad < 0) & ~finite.all()
        self.first_bad = torch.where(new, iteration, self.first_bad)
        self.bad_terms = torch.where(new, ~finite, self.bad_terms)

    def check(self, last_checkpoint: str | None, agent=None, bound: float | None = None) -> None:
        resume = (f"the last good checkpoint is {last_checkpoint} (continue from it with --resume)"
                  if last_checkpoint else "no checkpoint was saved before it")
        fix = "Lower the learning rate or check the buffer's rewards"
        first = int(self.first_bad)
        if first >= 0:
            terms = [name for name, bad in zip(self.names, self.bad_terms.tolist()) if bad]
            raise NonFiniteLoss(f"training stopped: {', '.join(terms)} became non-finite (NaN or inf) at iteration "
                                f"{first}; {resume}. {fix}")
        if agent is None:
            return
        params = [(name, p) for name, module in modules(agent).items() for p in module.parameters()]
        finite = torch.stack([torch.isfinite(p).all() for _, p in params]).tolist() if params else []
        broken = sorted({name for (name, _), ok in zip(params, finite) if not ok})
        if broken:
            raise NonFiniteLoss(f"training stopped: the weights of {', '.join(broken)} became non-finite (NaN or inf) "
                                f"by iteration {agent.iterations}, though every loss was finite; {resume}. {fix}")
        value = agent.current_value() if bound is not None else None
        if value is not None and not abs(float(value)) <= bound:
            raise NonFiniteLoss(f"training stopped: it diverged by iteration {agent.iterations} (mean Q {float(value):.3g}, "
                                f"beyond 10× the largest return the rewards allow, {bound / 10:.3g}); {resume}. {fix}")


def modules(agent) -> dict[str, torch.nn.Module]:
    """The networks the agent holds, with those of the learners it holds (named ``meta.Q``)."""
    found = {name: value for name, value in vars(agent).items() if isinstance(value, torch.nn.Module)}
    for name, value in vars(agent).items():
        if isinstance(value, Agent):
            found.update({f"{name}.{inner}": module for inner, module in modules(value).items()})
    return found
