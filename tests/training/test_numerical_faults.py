"""Numerical faults stop training with one line: NaN/inf losses, NaN weights, finite divergence."""

import pytest
import torch

from tests.training.runs import OFFLINE, SETTING, checkpoint_of, main_py, run_main
from tests.training.runs import out  # noqa: F401 (the fixture)


def test_non_finite_loss_stops_training_and_names_the_checkpoint(out):
    result = main_py("--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 3000, "--eval_freq", 1000,
                     "--checkpoint_freq", 50, "--log_freq", 100, "--eval_episodes", 1, "--lr", 1e30)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "became non-finite" in message and "at iteration" in message and "loss" in message
    assert "checkpoint" in message


@pytest.mark.parametrize("algo", ["BCQ", "SQV"])
def test_a_diverging_run_stops_with_one_line(out, capsys, algo):
    """The issue's attack, lr 1e6 with a checkpoint after every update: one line, exit 1, and no
    checkpoint of the diverged weights (Q explodes in the first update, before any checkpoint)."""
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--lr", 1e6, "--checkpoint_freq", 1, "--log_freq", 1,
                            *(["--sqv"] if algo == "SQV" else [])], capsys)
    assert code == 1 and len(lines) == 1 and "training stopped: it diverged by iteration 1" in lines[0], lines
    assert "no checkpoint was saved before it" in lines[0] and not checkpoint_of(out, algo)


def test_weights_are_checked_before_a_checkpoint_not_only_the_loss(out, capsys, monkeypatch):
    """An update whose loss was finite but which wrote a NaN weight (the old guard's blind spot): the
    checkpoint due right after it is not written, and the one named as the last good holds finite weights."""
    from discrete_SQV.dqn import DQN
    real = DQN.train

    def poisoned(self, buffer):
        real(self, buffer)
        if self.iterations == 100:
            with torch.no_grad():
                next(self.Q.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(DQN, "train", poisoned)
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--checkpoint_freq", 50], capsys)
    good = out / "checkpoints" / f"BCQ_{SETTING}" / "step_50"
    assert code == 1 and len(lines) == 1, lines
    assert (f"the weights of Q became non-finite (NaN or inf) by iteration 100, though every loss was finite; the "
            f"last good checkpoint is {good}" in lines[0]), lines
    assert checkpoint_of(out, "BCQ") == [good]
    parts = torch.load(good / "state.pt", weights_only=True)["agent"]["parts"]
    assert all(torch.isfinite(t).all() for t in parts["Q"].values())


def test_finite_divergence_of_behavioral_dqn_is_caught(tmp_path, capsys):
    """q_loss 1.7e13 and mean Q 2e6 used to exit 0: a mean Q beyond 10·max|r|/(1−γ) stops the run."""
    code, lines = run_main(["--train_behavioral", "--env", "CartPole-v1", "--out_dir", tmp_path, "--max_timesteps",
                            3000, "--start_timesteps", 200, "--eval_freq", 1000, "--eval_episodes", 1, "--lr", 1e6],
                           capsys)
    assert code == 1 and len(lines) == 1 and "training stopped: it diverged by iteration" in lines[0], lines
    assert "beyond 10× the largest return the rewards allow, 100" in lines[0]
