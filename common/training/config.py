"""Every hyperparameter of every stage: one table for the flags, the defaults and the README.

Each entry: name → (type, Atari default, regular default, continuous default, help). The env picks
the column (DESIGN §3): Atari ids the first, other discrete-action envs the second, Box-action envs
the third. A flag given on the command line wins. ``None`` means "not used by this family".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from common.envs.make import ATARI, IMAGE
from common.errors import UserError

ATARI_PROFILE, REGULAR, CONTINUOUS = "atari", "regular", "continuous"
PROFILES = (ATARI_PROFILE, REGULAR, CONTINUOUS)

PARAMETERS: dict[str, tuple] = {
    # data
    "buffer_name": (str, "Default", "Default", "Robust", "buffer files are buffers/{name}_{env}_{seed}_*"),
    "low_noise_p": (float, 0.2, 0.2, None, "buffer: probability of a low-noise episode (only eval_eps random actions)"),
    "rand_action_p": (float, 0.2, 0.2, 0.3, "buffer: probability of a uniformly random action"),
    "gaussian_std": (float, None, None, 0.3, "Gaussian action noise std, as a fraction of max_action "
                                             "(behavioral exploration and buffer)"),
    # schedule
    "start_timesteps": (int, 20_000, 1_000, 25_000, "behavioral training: env steps of uniformly random actions first"),
    "initial_eps": (float, 1.0, 0.1, None, "behavioral ε at the start of training"),
    "end_eps": (float, 1e-2, 0.1, None, "behavioral ε after the decay"),
    "eps_decay_period": (int, 250_000, 1, None, "training iterations over which ε decays linearly"),
    "eval_freq": (int, 50_000, 5_000, 5_000, "evaluate every this many env steps (online) or iterations (offline)"),
    "eval_eps": (float, 1e-3, 0.0, None, "ε of evaluation and of the buffer's low-noise episodes"),
    "train_freq": (int, 4, 1, 1, "behavioral training: one update every this many env steps"),
    # learning
    "discount": (float, 0.99, 0.99, 0.99, "discount γ"),
    "buffer_size": (int, 1_000_000, 1_000_000, 1_000_000, "replay capacity of the online stages"),
    "batch_size": (int, 32, 64, 100, "minibatch size"),
    "lr": (float, 6.25e-5, 3e-4, None, "Adam learning rate (continuous: the reference's per-network rates)"),
    "adam_eps": (float, 1.5e-4, 1e-8, None, "Adam ε"),
    "polyak_target_update": (bool, False, True, None, "polyak (soft) target updates instead of periodic copies"),
    "target_update_freq": (int, 8_000, 1, None, "iterations between target copies (without polyak)"),
    "tau": (float, 1.0, 0.005, 0.005, "polyak rate τ"),
    "BCQ_threshold": (float, 0.3, 0.3, None, "discrete BCQ keeps the actions with π(a∣s) / max π > τ"),
    "lmbda": (float, None, None, 0.75, "continuous BCQ: weight of min(Q1, Q2) in the soft clipped double-Q target"),
    "sqil_alpha": (float, 0.1, 0.1, None, "SQIL: temperature α of the soft value and of the softmax policy"),
    "repeat_num": (int, None, None, 100, "continuous BCQ: actions decoded per state when acting, the best by Q1 "
                                         "kept (20 when --item_embeddings is given)"),
    "phi": (float, None, None, 0.05, "continuous BCQ: perturbation bound, a fraction of max_action"),
    # Atari preprocessing
    "frame_skip": (int, 4, None, None, "Atari: repeat each action this many frames"),
    "frame_size": (int, 84, None, None, "Atari: frames are resized to this square size"),
    "state_history": (int, 4, None, None, "Atari: frames per state"),
    "done_on_life_loss": (bool, False, None, None, "Atari: a lost life ends the episode"),
    "reward_clipping": (bool, True, False, False, "learn from clip(r, -1, 1) (evaluation reports raw returns)"),
    "max_episode_timesteps": (int, 27_000, None, None,
                              "truncate episodes after this many agent steps (others: the env's own limit)"),
    # SQV augmentation
    "aug_pad": (int, 4, 1, None, "SQV on images: random-shift padding in pixels (regular column: MinAtar)"),
    "aug_shift": (str, None, "replicate", None, "SQV on MinAtar: the shift's offsets, replicate (uniform over all) or "
                                                "preserve_objects (uniform over those that move every object and "
                                                "create none; augmentation_check.py)"),
    "aug_noise": (float, None, 0.01, 0.01, "SQV on state vectors: Gaussian noise std in units of each "
                                             "dimension's std in the buffer"),
    "pixel_scale": (float, 1.0, 1.0, None, "images are multiplied by this before the network (1/255 for [0, 1])"),
}


@dataclass(frozen=True)
class Range:
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def __contains__(self, value: float) -> bool:
        return (math.isfinite(value) and (self.low < value if self.low_open else self.low <= value)
                and (value < self.high if self.high_open else value <= self.high))

    def __str__(self) -> str:  # what a value must do: "be positive", "lie in [0, 1]"
        if math.isinf(self.high):
            return "be positive" if self.low_open or self.low == 1 else "be non-negative"
        number = lambda x: str(int(x)) if float(x).is_integer() else f"{x:g}"
        return (f"lie in {'(' if self.low_open else '['}{number(self.low)}, {number(self.high)}"
                f"{')' if self.high_open else ']'}{self.why}")


PROBABILITY, AT_LEAST_ONE = Range(0, 1), Range(1)
# The valid values of every numeric flag, the table's and the run's (main.py), checked before any work;
# NaN and ±inf are never valid.
RANGES: dict[str, Range] = {
    **{name: PROBABILITY for name in ("low_noise_p", "rand_action_p", "initial_eps", "end_eps", "eval_eps", "discount",
                                      "tau", "lmbda")},
    **{name: Range(0) for name in ("start_timesteps", "gaussian_std", "aug_pad", "aug_noise", "phi")},
    **{name: AT_LEAST_ONE for name in ("eps_decay_period", "eval_freq", "train_freq", "buffer_size", "batch_size",
                                       "target_update_freq", "repeat_num", "frame_skip", "frame_size", "state_history",
                                       "max_episode_timesteps", "max_timesteps", "eval_episodes", "num_envs",
                                       "checkpoint_freq", "log_freq", "rec_history", "rec_holdout", "rec_dim")},
    **{name: Range(0, low_open=True) for name in ("lr", "adam_eps", "sqil_alpha", "pixel_scale")},
    "BCQ_threshold": Range(0, 1, high_open=True, why=" (1 would forbid every action)"),
    "seed": Range(0, 2 ** 32 - 1001, why=": NumPy's seeds, less the evaluation seeds seed + 100 + k"),
}


def check_ranges(values: dict) -> None:
    """A one-line error naming the first numeric flag in ``values`` outside its `RANGES` entry; ``None``
    (unset, or not this family's) passes."""
    for name, valid in RANGES.items():
        value = values.get(name)
        if value is not None and not isinstance(value, bool) and value not in valid:
            raise UserError(f"--{name} must {valid}, got {value}")


# Per-env defaults that replace the profile's column (a flag given on the command line still wins).
ENV_DEFAULTS: dict[str, dict[str, object]] = {
    # 20-step recommendation sessions: γ = 0.99 makes the values ~100× the per-step clicks and DDPG
    # unstable there; γ = 0.9 (an effective horizon of 10 steps) learns (README, "BCQ as a recommender").
    "ItemRecommendation-v0": {"discount": 0.9},
    "InteractionLog-v0": {"discount": 0.9},  # the same reasoning for logged sessions
}


# Flags whose ``None`` default means "the env's own value" rather than "does not apply".
APPLIES_TO_ALL = {"max_episode_timesteps"}


def not_applicable(name: str, profile_defaults: dict[str, object]) -> bool:
    return profile_defaults[name] is None and name not in APPLIES_TO_ALL


def profile_of(kind: str, continuous: bool) -> str:
    if continuous:
        return CONTINUOUS
    return ATARI_PROFILE if kind == ATARI else REGULAR


def defaults(profile: str, kind: str | None = None, env: str | None = None) -> dict[str, object]:
    """The default of every parameter for a profile (``kind`` distinguishes MinAtar images; ``env``
    applies `ENV_DEFAULTS`)."""
    column = 1 + PROFILES.index(profile)
    values = {name: entry[column] for name, entry in PARAMETERS.items()}
    if kind is not None and kind != IMAGE and profile == REGULAR:
        values["aug_pad"] = values["aug_shift"] = None
    if kind == IMAGE:
        values["aug_noise"] = None
    values.update(ENV_DEFAULTS.get(env, {}))
    return values
