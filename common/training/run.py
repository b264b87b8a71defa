"""A training stage's run: checkpoints, resuming, interruption, the NaN/divergence guard and evaluation."""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from common.envs.vector import make_vec_env
from common.io import atomic_save_npy
from common.training import checkpoint
from common.training.guards import FiniteGuard, Interrupted, stop_on_signals, value_bound
from common.training.logs import RunLog
from common.training.progress import log_eval, progress
from common.training.runtime import evaluate


def run_evaluation(agent, cfg, log: RunLog | None = None, step: int = 0) -> float:
    """Evaluate the agent; log the episode returns; return their mean."""
    returns = evaluation_returns(agent, cfg)
    if log is not None:
        log.evaluation(step, returns)
    return float(returns.mean())


def evaluation_returns(agent, cfg) -> np.ndarray:
    """The raw returns of ``eval_episodes`` greedy episodes (ε = ``eval_eps``), see `runtime.evaluate`."""
    return evaluate(agent.act_batch, lambda n: make_vec_env(cfg.env, cfg, n), cfg.seed, cfg.eval_episodes,
                    cfg.eval_eps or 0.0, agent.device, cfg.num_envs)


def train_step(agent, buffer, log: RunLog, run: "Run") -> None:
    """One update, its loss terms watched for NaN/inf; every ``log_freq`` updates the learner's
    scalars go to the training log."""
    agent.train(buffer)
    run.guard.update(agent.iterations, agent.last_loss)
    if agent.iterations % log.every == 0:
        run.check()
        log.training(agent.iterations, agent.scalars())


class Run:
    """A training stage's checkpointing, resuming, interruption and NaN handling (see `common.training.checkpoint`).

    `state` goes into every checkpoint: the agent's networks, targets, optimizers and counter,
    every RNG, the evaluation history and the log rows; ``buffers`` (online stages) too. A stage
    with more to keep extends `state` and `restore`.
    """

    def __init__(self, cfg, stage: str, agent, rng: np.random.Generator, log: RunLog, data,
                 buffers: dict[str, Any] | None = None):
        """``data``: what training batches come from (its rewards bound the value estimates);
        ``buffers``: an online stage's replay buffers by name, saved in every checkpoint."""
        self.cfg, self.stage, self.agent, self.rng, self.log = cfg, stage, agent, rng, log
        self.data, self.buffers = data, buffers or {}
        agent.precision = cfg.precision  # every training stage's learner goes through here
        self.evaluations: list[float] = []
        self.episode_returns: list[float] = []  # raw returns of the training episodes (online stages)
        self.guard = FiniteGuard(agent.device)
        self.last_checkpoint: str | None = None
        self.saved_at = 0  # the step of the last checkpoint (or of the start)
        self.stop = None  # set by `stop_on_signals`

    def resume(self) -> int:
        """With ``--resume``, restore the newest complete checkpoint; returns the step it was taken at.
        Without it the run starts over, and the checkpoints an earlier run of this stage and setting
        left are removed first (a later ``--resume`` must never mix the two runs)."""
        root = checkpoint.checkpoint_dir(self.cfg, self.stage)
        if not self.cfg.resume:
            if os.path.isdir(root):
                checkpoint.remove_all(self.cfg, self.stage)
                print(f"[{self.stage}] starting over: removed the checkpoints of an earlier run under {root} "
                      "(--resume continues one instead)")
            return 0
        path = checkpoint.newest(self.cfg, self.stage)
        if path is None:
            print(f"[{self.stage}] --resume: no checkpoint under {root}; starting from the beginning")
            return 0
        state = checkpoint.load(path, self.agent.device)
        self.restore(state)
        for name, buffer in self.buffers.items():
            buffer.load(os.path.join(path, name), capacity=buffer.capacity)
        self.last_checkpoint, self.saved_at = path, int(state["step"])
        print(f"[{self.stage}] resuming from {path} (step {state['step']}, {self.agent.iterations} updates)")
        return self.saved_at

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds besides the buffers."""
        return {"agent": checkpoint.agent_state(self.agent), "rng": checkpoint.rng_states(self.rng),
                "evaluations": self.evaluations, "episode_returns": self.episode_returns,
                "log": self.log.rows(), "elapsed": time.time() - self.log.start}

    def restore(self, state: dict[str, Any]) -> None:
        checkpoint.load_agent_state(self.agent, state["agent"])
        checkpoint.restore_rng_states(state["rng"], self.rng)
        self.evaluations = list(state["evaluations"])
        self.episode_returns = list(state["episode_returns"])
        self.log.restore(state["log"], state["elapsed"])  # wall_seconds goes on from where it stopped

    def check(self) -> None:
        """Stop on a non-finite loss or weight, or a diverged value estimate (`FiniteGuard.check`)."""
        self.guard.check(self.last_checkpoint, self.agent, value_bound(self.data, self.cfg.discount))

    def save_checkpoint(self, step: int) -> None:
        self.check()  # never checkpoint a diverged model
        self.last_checkpoint = checkpoint.save(self.cfg, self.stage, step, self.state(), self.buffers)
        self.saved_at = step

    def after(self, step: int) -> None:
        """At the end of a step (or an episode): checkpoint once ``step`` has passed the next multiple
        of ``checkpoint_freq``, and stop on a signal."""
        every = self.cfg.checkpoint_freq
        if step // every > self.saved_at // every and step < self.cfg.max_timesteps:
            self.save_checkpoint(step)
        if self.stop is not None and self.stop.requested:
            if self.last_checkpoint is None or os.path.basename(self.last_checkpoint) != f"step_{step}":
                self.save_checkpoint(step)
            raise Interrupted(self.stop.signum, f"interrupted at step {step} of {self.stage}; checkpoint saved to "
                                                f"{self.last_checkpoint}; continue with the same command plus --resume")

    def returns(self) -> np.ndarray:
        """The raw returns of one evaluation."""
        return evaluation_returns(self.agent, self.cfg)

    def evaluate(self, step: int, bar, results: str) -> None:
        """Evaluate (guard first), log it and write the evaluation history to ``results``."""
        self.check()
        returns = self.returns()
        self.log.evaluation(step, returns)
        self.evaluations.append(float(returns.mean()))
        atomic_save_npy(results, self.evaluations)
        log_eval(bar, self.stage, step, self.evaluations[-1], self.agent)

    def train_loop(self, label: str, results: str | None = None) -> None:
        """Offline updates on ``data`` until the agent has made ``max_timesteps`` (a resumed run goes on
        from its checkpoint), each guarded, checkpointed and stoppable by a signal; with ``results``,
        an evaluation every ``eval_freq`` updates and at the end, its history written there."""
        agent, cfg = self.agent, self.cfg
        with stop_on_signals() as self.stop, progress(cfg.max_timesteps, f"{label} {cfg.env}") as bar:
            bar.update(agent.iterations)
            while agent.iterations < cfg.max_timesteps:
                train_step(agent, self.data, self.log, self)
                bar.update()
                if results and (agent.iterations % cfg.eval_freq == 0 or agent.iterations == cfg.max_timesteps):
                    self.evaluate(agent.iterations, bar, results)
                self.after(agent.iterations)
        self.check()

    def finish(self) -> None:
        self.check()
        checkpoint.remove_all(self.cfg, self.stage)
