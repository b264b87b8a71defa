"""Runs that survive interruption: killed, signalled, a damaged checkpoint, a full disk, two runs at once."""
import os
import random
import signal
import time

import numpy as np
import pytest
import torch

from tests.training.runs import OFFLINE, SETTING, checkpoint_of, files_under, main_py, ok, run_main, wait_for_checkpoint
from tests.training.runs import out  # noqa: F401 (the fixture)


UNINTERRUPTED = {}  # algo → the results file of its uninterrupted run


@pytest.mark.parametrize("algo, how", [("BCQ", signal.SIGKILL), ("SQV", signal.SIGKILL), ("SQV", signal.SIGTERM)])
def test_killed_offline_run_resumes_to_identical_results(out, algo, how, capsys):
    """Killed at a random point after its first checkpoint, then resumed: the same results file, bit for bit."""
    extra = ["--sqv"] if algo == "SQV" else []
    results = out / "results" / f"{algo}_{SETTING}.npy"
    if algo not in UNINTERRUPTED:  # (in this process: a run gives the same bits here as in a fresh one)
        assert run_main([*OFFLINE, *extra, "--out_dir", out], capsys)[0] == 0
        UNINTERRUPTED[algo] = results.read_bytes()
        assert not (out / "checkpoints").exists()  # a finished stage leaves no checkpoint behind
        os.remove(results)
    uninterrupted = UNINTERRUPTED[algo]
    process = main_py(*OFFLINE, *extra, "--out_dir", out, popen=True)
    wait_for_checkpoint(process, out / "checkpoints" / f"{algo}_{SETTING}")
    time.sleep(random.Random(int(how)).uniform(0.0, 1.0))
    process.send_signal(how)
    _, stderr = process.communicate(timeout=120)
    if how == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM and "checkpoint saved to" in stderr, stderr
    else:
        assert process.returncode == -signal.SIGKILL
    resumed = ok(*OFFLINE, *extra, "--out_dir", out, "--resume")
    assert "resuming from" in resumed.stdout
    assert results.read_bytes() == uninterrupted


def test_behavioral_run_checkpoints_on_sigint_and_resumes(out):
    flags = ["--train_behavioral", "--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 4000,
             "--start_timesteps", 200, "--eval_freq", 1000, "--checkpoint_freq", 500, "--eval_episodes", 1]
    process = main_py(*flags, popen=True)
    wait_for_checkpoint(process, out / "checkpoints" / f"behavioral_{SETTING}")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT and "continue with the same command plus --resume" in stderr
    checkpoint = sorted((out / "checkpoints" / f"behavioral_{SETTING}").iterdir())[-1]
    assert (checkpoint / "state.pt").is_file() and (checkpoint / "buffer_state.npy").is_file()
    resumed = ok(*flags, "--resume")
    assert "resuming from" in resumed.stdout
    assert np.load(out / "results" / f"behavioral_{SETTING}.npy").shape == (4,)
    assert not (out / "checkpoints").exists()


def test_a_run_without_resume_drops_an_earlier_runs_checkpoints(out):
    """Else a later --resume could pick the earlier run's newer step over this run's own checkpoints."""
    stale = out / "checkpoints" / f"BCQ_{SETTING}" / "step_999999"
    stale.mkdir(parents=True)
    (stale / "state.pt").write_bytes(b"from an earlier run with other flags")
    result = ok(*OFFLINE, "--out_dir", out)
    assert "starting over: removed the checkpoints of an earlier run" in result.stdout
    assert not stale.exists() and np.load(out / "results" / f"BCQ_{SETTING}.npy").shape == (3,)


def interrupted_offline_run(out):
    """An offline run stopped by SIGTERM after its first checkpoint: the checkpoint folder."""
    process = main_py(*OFFLINE, "--out_dir", out, popen=True)
    wait_for_checkpoint(process, out / "checkpoints" / f"BCQ_{SETTING}")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    return checkpoint_of(out, "BCQ")[-1]


def flip_byte(path, offset=-5):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (lambda step: flip_byte(step / "state.pt"), "state.pt is corrupted (its SHA-256 differs"),
    (lambda step: flip_byte(step / "checksums.json", 20), "checksums.json is unreadable or damaged"),
    (lambda step: os.remove(step / "checksums.json"), "has no checksums.json (an older version wrote it, or it was"),
])
def test_a_damaged_checkpoint_is_refused_not_resumed(out, capsys, damage, message):
    step = interrupted_offline_run(out)
    damage(step)
    before = {path: (out / path).read_bytes() for path in files_under(out)}
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--resume"], capsys)
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert "run the same command without --resume to start over (only the newest checkpoint is kept)" in lines[0]
    assert {path: (out / path).read_bytes() for path in files_under(out)} == before


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(out, capsys, monkeypatch):
    """ENOSPC while the second checkpoint is written: one line naming the intact first checkpoint and
    --resume; no temporary folder left; resuming (disk freed) gives the uninterrupted run's results."""
    import errno

    from common.training import checkpoint
    code, _ = run_main([*OFFLINE, "--out_dir", out, "--max_timesteps", 400], capsys)
    results = out / "results" / f"BCQ_{SETTING}.npy"
    uninterrupted = results.read_bytes()
    real, calls = checkpoint.atomic_torch_save, []

    def full_disk_at_the_second(path, obj):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, obj)

    monkeypatch.setattr(checkpoint, "atomic_torch_save", full_disk_at_the_second)
    code, lines = run_main([*OFFLINE, "--out_dir", out, "--max_timesteps", 400], capsys)
    first = out / "checkpoints" / f"BCQ_{SETTING}" / "step_100"
    assert code == 1 and len(lines) == 1, lines
    assert ("the disk is full: checkpoint step 200 could not be written" in lines[0]
            and f"the checkpoint {first} is intact: free some space, then continue with the same command plus "
                "--resume" in lines[0]), lines
    assert checkpoint_of(out, "BCQ") == [first] and not any(".tmp" in p for p in files_under(out))
    monkeypatch.setattr(checkpoint, "atomic_torch_save", real)
    code, _ = run_main([*OFFLINE, "--out_dir", out, "--max_timesteps", 400, "--resume"], capsys)
    assert code == 0 and results.read_bytes() == uninterrupted


def test_generate_buffer_refuses_an_interrupted_behavioral_training(out, capsys):
    step = out / "checkpoints" / f"behavioral_{SETTING}" / "step_500"
    step.mkdir(parents=True)
    (step / "state.pt").write_bytes(b"a checkpoint")
    before = files_under(out)
    code, lines = run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert (f"the behavioral training of {SETTING} was interrupted (its checkpoint {step} is still there)" in lines[0]
            and "--train_behavioral --env CartPole-v1 --seed 0" in lines[0] and "--resume" in lines[0]), lines
    assert files_under(out) == before


def test_two_runs_of_one_setting_cannot_write_at_once(out, capsys):
    """A second run of a running setting and stage stops at once and touches nothing; another algorithm
    reads the same buffer beside it; regenerating that buffer meanwhile is refused; a killed run's
    lock is gone with it, and wall_seconds goes on across the resume."""
    long = [*OFFLINE, "--max_timesteps", 100000, "--checkpoint_freq", 200, "--log_freq", 100]
    process = main_py(*long, "--out_dir", out, popen=True)
    try:
        wait_for_checkpoint(process, out / "checkpoints" / f"BCQ_{SETTING}")
        config = out / "results" / f"BCQ_{SETTING}_config.json"
        live = config.read_bytes()
        code, lines = run_main([*long, "--out_dir", out, "--batch_size", 16], capsys)
        assert code == 2 and len(lines) == 1, lines
        assert f"the BCQ stage of {SETTING} in {out} is in use by another run now (pid {process.pid}:" in lines[0]
        assert config.read_bytes() == live and checkpoint_of(out, "BCQ")  # its config and checkpoint untouched
        assert run_main([*OFFLINE, "--sqv", "--out_dir", out, "--max_timesteps", 100], capsys)[0] == 0
        code, lines = run_main(["--generate_buffer", "--env", "CartPole-v1", "--out_dir", out], capsys)
        assert code == 2 and f"the buffer_Default stage of {SETTING} in {out} is in use by another run" in lines[0]
    finally:
        process.kill()
        process.communicate(timeout=60)
    step = checkpoint_of(out, "BCQ")[-1]
    elapsed = torch.load(step / "state.pt", weights_only=True)["elapsed"]
    resumed = ok(*long[:-4], "--out_dir", out, "--resume", "--max_timesteps", int(step.name[5:]) + 200,
                 "--checkpoint_freq", 200, "--log_freq", 100)
    assert "resuming from" in resumed.stdout
    assert not [p for p in os.listdir(out) if p.endswith(".lock")]
    import csv
    with open(out / "results" / f"BCQ_{SETTING}_train.csv") as f:
        rows = [(int(row["step"]), float(row["wall_seconds"])) for row in csv.DictReader(f)]
    after = [seconds for step_, seconds in rows if step_ > int(step.name[5:])]
    assert after and min(after) >= elapsed > 0  # the clock goes on from the checkpoint, not from zero
