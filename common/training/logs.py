"""Run logs beside the reference ``results/*.npy``: CSV files and, on request, a TensorBoard run.

``results/{name}_{setting}_eval.csv``: step, mean_return, std_return, episodes, wall_seconds.
``results/{name}_{setting}_train.csv``: step, wall_seconds and the learner's scalars (losses,
mean Q, the fraction of actions BCQ's mask allows, ε). Each file is rewritten atomically, so a
reader never sees half a row. With ``--tensorboard`` the same figures go to
``runs/{name}_{setting}`` (``tensorboard --logdir runs``); with ``--wandb`` to a Weights & Biases run
named ``{name}_{setting}`` (project, entity and group from their flags) whose config is the resolved
config, written under ``{out_dir}/wandb`` (``WANDB_MODE=offline`` keeps it there).
"""
from __future__ import annotations

import csv
import io
import os
import time

import numpy as np

from common.io import atomic_open


class RunLog:
    def __init__(self, cfg, name: str):
        stem = os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}")
        self.eval_path, self.train_path = f"{stem}_eval.csv", f"{stem}_train.csv"
        self.eval_rows: list[dict] = []
        self.train_rows: list[dict] = []
        self.start = time.time()
        self.every = int(getattr(cfg, "log_freq", 1000))
        self.sinks = []
        if getattr(cfg, "tensorboard", False):
            self.sinks.append(TensorBoard(os.path.join(cfg.out_dir, "runs", f"{name}_{cfg.setting}")))
        if getattr(cfg, "wandb", False):
            self.sinks.append(WandB(cfg, f"{name}_{cfg.setting}"))

    def evaluation(self, step: int, returns: np.ndarray) -> None:
        row = {"step": step, "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
               "episodes": len(returns), "wall_seconds": round(time.time() - self.start, 3)}
        self.eval_rows.append(row)
        _write_csv(self.eval_path, self.eval_rows)
        self._send({"eval/mean_return": row["mean_return"], "eval/std_return": row["std_return"]}, step)

    def training(self, step: int, scalars: dict[str, float]) -> None:
        row = {"step": step, "wall_seconds": round(time.time() - self.start, 3), **scalars}
        self.train_rows.append(row)
        _write_csv(self.train_path, self.train_rows)
        self._send({f"train/{key}": value for key, value in scalars.items()}, step)

    def _send(self, scalars: dict[str, float], step: int) -> None:
        for sink in self.sinks:
            sink.log(scalars, step)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class TensorBoard:
    def __init__(self, log_dir: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir)

    def log(self, scalars: dict[str, float], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandB:
    def __init__(self, cfg, name: str):
        import wandb  # main.py has checked that it is installed

        self.run = wandb.init(project=cfg.wandb_project, entity=cfg.wandb_entity, group=cfg.wandb_group, name=name,
                              config=vars(cfg), dir=cfg.out_dir, reinit="create_new")

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()


def _write_csv(path: str, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))  # union, first-seen order
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path) as f:
        f.write(text.getvalue().encode())
