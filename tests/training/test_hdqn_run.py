"""h-DQN through the stage machinery: an interrupted or killed run resumed gives the uninterrupted
run's files, and a NaN loss stops it with one line."""
import csv
import os
import signal
from types import SimpleNamespace

import pytest

from common.training import checkpoint
from discrete_SQV import hdqn
from discrete_SQV.dqn import DQN
from tests.training.runs import run_main

SETTING = "DiscreteStochasticDecisionProcess-v0_0"
HDQN = ["--hdqn", "--env", "DiscreteStochasticDecisionProcess-v0", "--max_timesteps", 600, "--eval_freq", 250,
        "--checkpoint_freq", 150, "--eval_episodes", 2, "--batch_size", 16]


def outputs(out):
    """Every results and model file of the run (the CSVs without their wall-clock column)."""
    found = {}
    for folder in ("results", "models"):
        for name in sorted(os.listdir(out / folder)):
            path = out / folder / name
            if name.endswith(".csv"):
                with open(path) as f:
                    found[name] = [{k: v for k, v in row.items() if k != "wall_seconds"} for row in csv.DictReader(f)]
            elif not name.endswith("_config.json"):
                found[name] = path.read_bytes()
    return found


def stop_at_second_report(monkeypatch, stop):
    """``stop(run)`` runs in place of h-DQN's second report."""
    real, calls = hdqn.HDQNRun.report, []

    def report(run, bar):
        calls.append(run.agent.steps)
        if len(calls) == 2:
            stop(run)
        real(run, bar)

    monkeypatch.setattr(hdqn.HDQNRun, "report", report)


@pytest.mark.parametrize("how", ["interrupted", "killed"])
def test_an_interrupted_or_killed_hdqn_run_resumes_to_identical_files(tmp_path, capsys, monkeypatch, how):
    """Interrupted: SIGINT, so the checkpoint path saves one and exits 130. Killed: it dies at once
    after its last periodic checkpoint (the files written since are stale and must be replaced)."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_main([*HDQN, "--out_dir", whole], capsys)[0] == 0
    assert not (whole / "checkpoints").exists()

    def stop(run):
        if how == "interrupted":
            os.kill(os.getpid(), signal.SIGINT)  # the run checkpoints at the end of this episode, then stops
        else:
            raise KeyboardInterrupt  # like a kill: no checkpoint beyond the periodic ones

    stop_at_second_report(monkeypatch, stop)
    code, lines = run_main([*HDQN, "--out_dir", parts], capsys)
    assert code == 130 and checkpoint.newest(SimpleNamespace(out_dir=str(parts), setting=SETTING), "hDQN") is not None, lines
    monkeypatch.undo()
    stdout = []
    assert run_main([*HDQN, "--out_dir", parts, "--resume"], capsys, stdout)[0] == 0
    assert "resuming from" in stdout[0]
    assert outputs(parts) == outputs(whole) and not (parts / "checkpoints").exists()


def test_a_nan_loss_stops_hdqn_with_one_line(tmp_path, capsys, monkeypatch):
    real = DQN.loss

    def poisoned(self, batch):
        loss, terms = real(self, batch)
        if self.iterations == 40 and self.num_actions == 2:  # the controller's 41st update
            loss = loss * float("nan")
            terms = {**terms, "q_loss": loss.detach()}
        return loss, terms

    monkeypatch.setattr(DQN, "loss", poisoned)
    code, lines = run_main([*HDQN, "--out_dir", tmp_path], capsys)
    assert code == 1 and len(lines) == 1, lines
    assert "training stopped: controller_q_loss became non-finite (NaN or inf) at iteration" in lines[0], lines
    assert "no checkpoint was saved before it" in lines[0]
