"""The run's config: every hyperparameter in one table (`PARAMETERS`: flags, defaults, valid ranges, the
README's table), the typed `Config` built from it and from the other flags (`common.training.flags`), and
`resolve`, which fills a parsed command line into a checked `Config`.

Each `PARAMETERS` entry: name → (type, Atari default, regular default, continuous default, help). The env
picks the column (docs/DESIGN.md §3): Atari ids the first, other discrete-action envs the second, Box-action envs
the third. A flag given on the command line wins. ``None`` means "not used by this family".
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
from dataclasses import dataclass, make_dataclass

from common.envs.make import ATARI, ATARI_EPISODE_STEPS, IMAGE, EnvOptions, action_space_of, env_kind
from common.errors import UserError
from common.io import existing_ancestor
from common.training.flags import FLAGS, REC_DEFAULTS
from common.training.runtime import get_device, setting_name

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
    "frame_skip": (int, EnvOptions.frame_skip, None, None, "Atari: repeat each action this many frames"),
    "frame_size": (int, EnvOptions.frame_size, None, None, "Atari: frames are resized to this square size"),
    "state_history": (int, EnvOptions.state_history, None, None, "Atari: frames per state"),
    "done_on_life_loss": (bool, EnvOptions.done_on_life_loss, None, None, "Atari: a lost life ends the episode"),
    "reward_clipping": (bool, True, False, False, "learn from clip(r, -1, 1) (evaluation reports raw returns)"),
    "max_episode_timesteps": (int, ATARI_EPISODE_STEPS, None, None,
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


# --- the typed config ---------------------------------------------------------------------------
DERIVED = (("kind", str), ("profile", str), ("default_buffer_name", str), ("rec_embeddings", "str | None"),
           ("setting", str), ("command", str))


def _interaction_cache(cfg) -> str | None:
    """The prepared cache of ``--dataset interactions:FILE`` (built once, under a lock), which
    InteractionLog-v0 evaluates on (`common.envs.make.EnvOptions`); None for every other run."""
    if not (cfg.dataset or "").startswith("interactions:"):
        return None
    from common.data.interactions import prepare

    return prepare(cfg)


# One field per flag (`common.training.flags.FLAGS`, in the parser's order), per hyperparameter
# (`PARAMETERS`) and per derived value; ``vars(cfg)`` is the resolved config saved beside the results.
Config = make_dataclass(
    "Config",
    [(f.name, f"{f.type.__name__} | None") for f in FLAGS]
    + [(name, f"{entry[0].__name__} | None") for name, entry in PARAMETERS.items()] + list(DERIVED),
    namespace={"__doc__": "Every flag and hyperparameter of a run, resolved (`resolve`).",
               "interaction_cache": property(_interaction_cache)})


def resolve(args, env: str, max_timesteps: float = 1e6, preset: dict | None = None) -> Config:
    """The run's config: every unset flag from ``preset`` (pipeline) or the env's defaults, checked."""
    kind = env_kind(env)
    continuous = not hasattr(action_space_of(env), "n")
    profile = profile_of(kind, continuous)
    base = defaults(profile, kind, env)
    unused = [name for name in PARAMETERS if getattr(args, name) is not None and not_applicable(name, base)]
    if unused:
        raise UserError(f"--{unused[0]} does not apply to {env} ({profile} env, {kind} observations); drop it")
    cfg = dict(vars(args), env=env, kind=kind, profile=profile, default_buffer_name=base["buffer_name"])
    for name, value in {**REC_DEFAULTS, **base, **(preset or {})}.items():
        if cfg[name] is None:
            cfg[name] = value
    cfg["max_timesteps"] = args.max_timesteps if args.max_timesteps is not None else max_timesteps
    check_ranges(cfg)  # before the integer conversions below (NaN and inf have none)
    for name in [*PARAMETERS, "max_timesteps"]:
        if (name == "max_timesteps" or PARAMETERS[name][0] is int) and cfg[name] is not None:
            cfg[name] = int(cfg[name])
    interactions = (cfg["dataset"] or "").startswith("interactions:")
    if interactions != (env == "InteractionLog-v0"):
        raise UserError("--dataset interactions:FILE trains on a log, and InteractionLog-v0 evaluates on its held-out "
                        "items: give both (--env InteractionLog-v0 --dataset interactions:FILE)")
    cfg["rec_embeddings"] = None
    if interactions:  # the agent's catalog is the env's: the log's items, embedded by ALS or by the user's .npy
        cfg["rec_embeddings"] = None if cfg["item_embeddings"] in (None, "env") else cfg["item_embeddings"]
        cfg["item_embeddings"] = "env"
    if cfg["item_embeddings"] is not None and args.repeat_num is None and continuous:
        cfg["repeat_num"] = 20  # a recommender picks among fewer candidate actions
    if cfg["checkpoint_freq"] is None:
        cfg["checkpoint_freq"] = cfg["eval_freq"]
    cfg["setting"] = setting_name(env, args.seed)
    cfg["command"] = " ".join(["python main.py", *sys.argv[1:]])
    config = Config(**cfg)
    check(config)
    return config


def check(cfg: Config) -> None:
    """What the ranges cannot say, checked before any file is written: the devices and bf16 support, the
    dataset spec, flags of another family, the optional packages asked for, a writable ``--out_dir``."""
    device = get_device(cfg.device)
    if cfg.precision == "bf16":
        import torch

        supported = (torch.cuda.is_bf16_supported() if device.type == "cuda"
                     else torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        if not supported:
            where = "this GPU" if device.type == "cuda" else "this CPU (it lacks AVX512-BF16/AMX)"
            raise UserError(f"--precision bf16: {where} has no fast bfloat16 arithmetic; use --precision fp32")
    if cfg.buffer_device != "auto":
        get_device(cfg.buffer_device, "--buffer_device")
    if cfg.dataset:
        from common.data.datasets import parse, parse_ckpts

        if parse(cfg.dataset)[0] == "dqn_replay":
            parse_ckpts(cfg.ckpts)
    if cfg.item_embeddings is not None and cfg.profile != CONTINUOUS:
        raise UserError(f"--item_embeddings applies to continuous-action envs (e.g. ItemRecommendation-v0); "
                        f"{cfg.env} has discrete actions")
    from common.learning.augment import SHIFTS

    if cfg.aug_shift is not None and cfg.aug_shift not in SHIFTS:
        raise UserError(f"--aug_shift {cfg.aug_shift}: expected one of {', '.join(SHIFTS)}")
    if cfg.wandb:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise UserError("--wandb needs the wandb package: pip install -e '.[logging]' (or drop --wandb)") from None
    check_writable(cfg.out_dir)


def check_writable(out_dir: str) -> None:
    """A clear error, before any work, when ``out_dir`` cannot be created or written (leaves nothing behind)."""
    existing = existing_ancestor(os.path.abspath(out_dir))
    if not os.path.isdir(existing):
        raise UserError(f"--out_dir {out_dir}: {existing} is a file, not a folder; choose another --out_dir")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserError(f"--out_dir {out_dir}: cannot write in {existing} ({err.strerror}); "
                        "choose a writable --out_dir") from None
