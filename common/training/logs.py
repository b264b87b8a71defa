"""Run logs beside the reference ``results/*.npy``: CSV files and, on request, a TensorBoard run.

``results/{name}_{setting}_eval.csv``: step, mean_return, std_return, episodes, wall_seconds.
``results/{name}_{setting}_train.csv``: step, wall_seconds and the learner's scalars (losses,
mean Q, the fraction of actions BCQ's mask allows, ε). Rows are appended as whole lines, each
flushed, so a reader never sees half a row; a file is rewritten (atomically) only for its first
row, for a row that brings a new column, and once when a run resumes from a checkpoint's rows.
With ``--tensorboard`` the same figures go to ``runs/{name}_{setting}`` (``tensorboard --logdir
runs``); with ``--wandb`` to a Weights & Biases run named ``{name}_{setting}`` (project, entity and
group from their flags) whose config is the resolved config, written under ``{out_dir}/wandb``
(``WANDB_MODE=offline`` keeps it there).
"""
from __future__ import annotations

import csv
import io
import os
import time

import numpy as np

from common.io import atomic_save_text


class CsvLog:
    """One CSV file: the rows so far, with the union of their keys (first-seen order) as header."""

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []
        self.fields: list[str] = []  # the header of the file on disk; empty: not written by this run yet

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if self.fields and all(key in self.fields for key in row):
            with open(self.path, "ab", buffering=0) as f:  # one write of one whole line
                f.write(_csv_text(self.fields, [row]).encode())
        else:
            self.rewrite()

    def restore(self, rows: list[dict]) -> None:
        """Continue from a checkpoint's rows: the file is rewritten from them (at its first row if none)."""
        self.rows, self.fields = list(rows), []
        if self.rows:
            self.rewrite()

    def rewrite(self) -> None:
        self.fields = list(dict.fromkeys(key for row in self.rows for key in row))
        atomic_save_text(self.path, _csv_text(self.fields, self.rows, header=True))


def _csv_text(fields: list[str], rows: list[dict], header: bool = False) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


class RunLog:
    def __init__(self, cfg, name: str):
        stem = os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}")
        self.eval_log, self.train_log = CsvLog(f"{stem}_eval.csv"), CsvLog(f"{stem}_train.csv")
        self.start = time.time()
        self.every = int(cfg.log_freq)
        self.sinks = []
        if cfg.tensorboard:
            self.sinks.append(TensorBoard(os.path.join(cfg.out_dir, "runs", f"{name}_{cfg.setting}")))
        if cfg.wandb:
            self.sinks.append(WandB(cfg, f"{name}_{cfg.setting}"))

    def evaluation(self, step: int, returns: np.ndarray) -> None:
        row = {"step": step, "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
               "episodes": len(returns), "wall_seconds": round(time.time() - self.start, 3)}
        self.eval_log.add(row)
        self._send({"eval/mean_return": row["mean_return"], "eval/std_return": row["std_return"]}, step)

    def training(self, step: int, scalars: dict[str, float]) -> None:
        self.train_log.add({"step": step, "wall_seconds": round(time.time() - self.start, 3), **scalars})
        self._send({f"train/{key}": value for key, value in scalars.items()}, step)

    def rows(self) -> tuple[list[dict], list[dict]]:
        """The evaluation and training rows so far (a checkpoint keeps them)."""
        return self.eval_log.rows, self.train_log.rows

    def restore(self, rows: tuple[list[dict], list[dict]], elapsed: float) -> None:
        """Continue a checkpointed run: its rows, and wall_seconds going on from ``elapsed``."""
        self.eval_log.restore(rows[0])
        self.train_log.restore(rows[1])
        self.start = time.time() - elapsed

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


