"""--wandb: the same scalars and the resolved config in an offline W&B run, read back from its file."""
import csv
import glob
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
wandb = pytest.importorskip("wandb")  # the logging extra; installed by the README's install command


def wandb_records(path: str):
    """The protobuf records of W&B's transaction log (``run-*.wandb``): a 7-byte header, then
    LevelDB-style 32 KiB blocks of chunks (crc32: 4 bytes, length: 2, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, block, parts = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            yield record


def test_wandb_offline_run_has_the_csv_scalars_and_the_config(reference_buffer):
    out = reference_buffer
    argv = ["--env", "CartPole-v1", "--out_dir", out, "--views", "clean", "--max_timesteps", 60, "--eval_freq", 30,
            "--log_freq", 20, "--eval_episodes", 1, "--wandb", "--wandb_group", "g1"]
    result = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *map(str, argv)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = glob.glob(str(out / "wandb" / "offline-run-*" / "run-*.wandb"))
    history, run = [], None
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
        elif kind == "run":
            run = record.run
    assert (run.project, run.display_name, run.run_group) == ("bcq-sqv", "SQVclean_CartPole-v1_0", "g1")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["views"] == "clean" and config["setting"] == "CartPole-v1_0" and config["max_timesteps"] == 60
    evals = [(row["_step"], row["eval/mean_return"]) for row in history if "eval/mean_return" in row]
    returns = np.load(out / "results" / "SQVclean_CartPole-v1_0.npy")
    assert evals == [(30, pytest.approx(returns[0])), (60, pytest.approx(returns[1]))]
    train = {row["_step"]: row["train/q_loss"] for row in history if "train/q_loss" in row}
    with open(out / "results" / "SQVclean_CartPole-v1_0_train.csv") as f:
        rows = {int(r["step"]): float(r["q_loss"]) for r in csv.DictReader(f)}
    assert rows and train == pytest.approx(rows)


def test_wandb_missing_is_one_line_naming_the_extra(reference_buffer):
    code = ("import sys; sys.modules['wandb'] = None; sys.path.insert(0, sys.argv[1]); import main; "
            "sys.exit(main.main(sys.argv[2:]))")
    result = subprocess.run([sys.executable, "-c", code, ROOT, "--env", "CartPole-v1", "--out_dir",
                             str(reference_buffer / "out"), "--wandb"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --wandb needs the wandb package: pip install -e '.[logging]' (or drop --wandb)"]
    assert not (reference_buffer / "out").exists()
