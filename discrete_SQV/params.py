"""Hyperparameters of the discrete family: one table for the flags, the defaults and the README.

Each entry: name → (type, Atari default, regular default, help). Atari ids get the Atari column,
every other env the regular one (DESIGN §3); any flag given on the command line wins.
"""
from __future__ import annotations

from common.envs import ATARI, IMAGE

PARAMETERS: dict[str, tuple[type, object, object, str]] = {
    # agent and schedule
    "start_timesteps": (int, 20_000, 1_000, "behavioral training: env steps of uniformly random actions first"),
    "initial_eps": (float, 1.0, 0.1, "behavioral ε at the start of training"),
    "end_eps": (float, 1e-2, 0.1, "behavioral ε after the decay"),
    "eps_decay_period": (int, 250_000, 1, "training iterations over which ε decays linearly"),
    "eval_freq": (int, 50_000, 5_000, "evaluate every this many env steps (online) or iterations (offline)"),
    "eval_eps": (float, 1e-3, 0.0, "ε of evaluation and of the buffer's low-noise episodes"),
    "discount": (float, 0.99, 0.99, "discount γ"),
    "buffer_size": (int, 1_000_000, 1_000_000, "replay capacity of the online stages"),
    "batch_size": (int, 32, 64, "minibatch size"),
    "lr": (float, 6.25e-5, 3e-4, "Adam learning rate"),
    "adam_eps": (float, 1.5e-4, 1e-8, "Adam ε"),
    "train_freq": (int, 4, 1, "behavioral training: one update every this many env steps"),
    "polyak_target_update": (bool, False, True, "polyak (soft) target updates instead of periodic copies"),
    "target_update_freq": (int, 8_000, 1, "iterations between target copies (without polyak)"),
    "tau": (float, 1.0, 0.005, "polyak rate τ"),
    # Atari preprocessing (only Atari uses all of them)
    "frame_skip": (int, 4, 4, "Atari: repeat each action this many frames"),
    "frame_size": (int, 84, 84, "Atari: frames are resized to this square size"),
    "state_history": (int, 4, 4, "Atari: frames per state"),
    "done_on_life_loss": (bool, False, False, "Atari: a lost life ends the episode"),
    "reward_clipping": (bool, True, False, "learn from clip(r, -1, 1) (evaluation reports raw returns)"),
    "max_episode_timesteps": (int, 27_000, None,
                              "truncate episodes after this many agent steps (non-Atari: the env's own limit)"),
    # SQV augmentation
    "aug_pad": (int, 4, 1, "SQV on images: random-shift padding in pixels (MinAtar: 1)"),
    "aug_noise": (float, None, 0.003, "SQV on state vectors: Gaussian noise std in units of each "
                                      "dimension's std in the buffer"),
    "pixel_scale": (float, 1.0, 1.0, "images are multiplied by this before the network (1/255 for [0, 1])"),
}


def defaults(kind: str) -> dict[str, object]:
    """The default of every parameter for an env kind."""
    column = 1 if kind == ATARI else 2
    values = {name: entry[column] for name, entry in PARAMETERS.items()}
    if kind == IMAGE:
        values["aug_pad"] = 1
    return values
