"""Where a stage's files go (the reference names, docs/DESIGN.md §6) and the command that makes them."""
from __future__ import annotations

import os

from common.io import atomic_save_json


def model_prefix(cfg, name: str) -> str:
    return os.path.join(cfg.out_dir, "models", f"{name}_{cfg.setting}")


def buffer_prefix(cfg) -> str:
    return os.path.join(cfg.out_dir, "buffers", f"{cfg.buffer_name}_{cfg.setting}")


def results_path(cfg, name: str) -> str:
    return os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}.npy")


def episodes_path(cfg, name: str) -> str:
    """Raw returns of every training episode of an online stage."""
    return os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}_episodes.npy")


def save_config(cfg, name: str, extra: dict | None = None) -> None:
    """The resolved config (plus ``extra``) as ``results/{name}_{setting}_config.json``."""
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}_config.json"),
                     {**vars(cfg), **(extra or {})})


def command(cfg, stage_flag: str) -> str:
    """The command line that runs ``stage_flag`` for this env/seed/output folder (for error messages)."""
    parts = ["python main.py", *([stage_flag] if stage_flag else []), f"--env {cfg.env}", f"--seed {cfg.seed}"]
    if cfg.buffer_name != cfg.default_buffer_name and stage_flag != "--train_behavioral":
        parts.append(f"--buffer_name {cfg.buffer_name}")
    if cfg.out_dir != ".":
        parts.append(f"--out_dir {cfg.out_dir}")
    return " ".join(parts)
