"""What a stage reads: its env, checked against the family, and the offline data."""
from __future__ import annotations

from common.data import datasets, interactions, manifest
from common.envs.make import EnvInfo, make_env
from common.errors import UserError
from common.training.paths import buffer_prefix, command


def open_env(cfg, family) -> EnvInfo:
    info = make_env(cfg.env, cfg)
    family.check_env(info, cfg)
    return info


def load_buffer(cfg, family, info: EnvInfo, device, rng):
    """The offline data: the saved buffer or ``--dataset``, checked against its manifest and this env;
    a clear error for every misfit."""
    buffer = family.make_buffer(info, cfg, device, rng, 1)
    kind, location = datasets.parse(cfg.dataset) if cfg.dataset else (None, None)
    if kind in ("d4rl", "minari"):
        prefix, how = datasets.fill(buffer, cfg, info), f"a {kind} dataset recorded on {cfg.env}"
    else:
        prefix, how = saved_data(cfg, info, kind, location)
        manifest.verify(prefix, cfg, info, how)
        buffer.load(prefix, how_to_create=how, mmap=cfg.mmap or kind == "dqn_replay")
    space = info.action_space
    if hasattr(space, "n") and buffer.action[:buffer.size].max() >= space.n:
        raise UserError(f"buffer {prefix} holds action {int(buffer.action[:buffer.size].max())}, but {cfg.env} has "
                        f"{space.n} actions: was it generated for another env? Regenerate it with: {how}")
    if cfg.batch_size > buffer.size:
        raise UserError(f"--batch_size {cfg.batch_size} is larger than the buffer ({buffer.size} transitions); "
                        f"use a smaller --batch_size or a bigger buffer")
    return buffer


def saved_data(cfg, info: EnvInfo, kind: str | None, location: str | None) -> tuple[str, str]:
    """The prefix of the buffer files to load and the command that (re)creates them."""
    if kind == "dqn_replay":
        prefix = datasets.prepare_dqn_replay(cfg, info, location)
        return prefix, (f"python main.py --env {cfg.env} --dataset {cfg.dataset} --ckpts {cfg.ckpts} "
                        f"(after deleting {prefix}_*)")
    if kind == "interactions":
        prefix = interactions.prepare(cfg)
        return prefix, f"python main.py --env {cfg.env} --dataset {cfg.dataset} (after deleting {prefix}_*)"
    return buffer_prefix(cfg), command(cfg, "--generate_buffer")
