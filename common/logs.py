"""Run logs beside the reference ``results/*.npy``: CSV files and, on request, a TensorBoard run.

``results/{name}_{setting}_eval.csv``: step, mean_return, std_return, episodes, wall_seconds.
``results/{name}_{setting}_train.csv``: step, wall_seconds and the learner's scalars (losses,
mean Q, the fraction of actions BCQ's mask allows, ε). Each file is rewritten atomically, so a
reader never sees half a row. With ``--tensorboard`` the same figures go to
``runs/{name}_{setting}`` (``tensorboard --logdir runs``).
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
        self.writer = None
        if getattr(cfg, "tensorboard", False):
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(os.path.join(cfg.out_dir, "runs", f"{name}_{cfg.setting}"))

    def evaluation(self, step: int, returns: np.ndarray) -> None:
        row = {"step": step, "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
               "episodes": len(returns), "wall_seconds": round(time.time() - self.start, 3)}
        self.eval_rows.append(row)
        _write_csv(self.eval_path, self.eval_rows)
        if self.writer is not None:
            self.writer.add_scalar("eval/mean_return", row["mean_return"], step)
            self.writer.add_scalar("eval/std_return", row["std_return"], step)

    def training(self, step: int, scalars: dict[str, float]) -> None:
        row = {"step": step, "wall_seconds": round(time.time() - self.start, 3), **scalars}
        self.train_rows.append(row)
        _write_csv(self.train_path, self.train_rows)
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _write_csv(path: str, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))  # union, first-seen order
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path) as f:
        f.write(text.getvalue().encode())
