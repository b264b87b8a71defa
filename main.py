"""Offline RL with batch-constrained Q-learning: behavioral agent → replay buffer → BCQ / SQV.

    python main.py --train_behavioral --env CartPole-v1   # 1. train the behavioral agent online
    python main.py --generate_buffer --env CartPole-v1    # 2. roll it out with noise, save a buffer
    python main.py --env CartPole-v1                      # 3. train BCQ on that buffer
    python main.py --env CartPole-v1 --sqv                #    ... or SQV
    python main.py --pipeline                             # all four on CartPole-v1, then a table
    python main.py --sqil --env CartPole-v1               # SQIL, online, with the buffer as demonstrations

Discrete action spaces run DQN → discrete BCQ / SQV (discrete_SQV/); Box action spaces run
DDPG → continuous BCQ / SQV (continuous_BCQ/).
"""
from __future__ import annotations

import argparse
import os
import sys
from types import SimpleNamespace

PIPELINE_ENV = "CartPole-v1"
REFERENCE_ENV = "PongNoFrameskip-v0"
# --pipeline budgets per profile and stage (behavioral env steps, buffer env steps, offline iterations),
# plus flags it sets unless given. Chosen so the four stages finish in under 10 minutes on 2 CPU cores.
PIPELINE = {
    "atari": {"budgets": (50_000, 50_000, 50_000), "flags": {}, "sqil": 50_000},
    "regular": {"budgets": (50_000, 50_000, 50_000), "flags": {}, "sqil": 30_000},
    "continuous": {"budgets": (15_000, 50_000, 5_000), "flags": {"start_timesteps": 1_000, "eval_freq": 1_000}},
}


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (the problem and where to look), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see python main.py --help\n")


def build_parser() -> argparse.ArgumentParser:
    from common.learning.algorithms import TARGETS, VIEWS
    from common.training.config import PARAMETERS

    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--train_behavioral", action="store_true", help="stage 1: train the behavioral agent online")
    stage.add_argument("--generate_buffer", action="store_true", help="stage 2: roll the behavioral agent out, save a buffer")
    stage.add_argument("--pipeline", action="store_true",
                       help=f"run behavioral → buffer → BCQ → SQV (default env {PIPELINE_ENV}) and print a table")
    stage.add_argument("--sqil", action="store_true",
                       help="SQIL (discrete): learn online with the generated buffer as demonstrations")
    stage.add_argument("--hdqn", action="store_true",
                       help="h-DQN (meta-controller + controller), e.g. on DiscreteStochasticDecisionProcess-v0")
    stage.add_argument("--export_minari", type=str, default=None, metavar="DATASET_ID",
                       help="write this env and seed's saved buffer as a Minari dataset (vector/MinAtar states)")
    stage.add_argument("--fqe", action="store_true",
                       help="off-policy evaluation: Fitted Q Evaluation of the trained BCQ (or --sqv, --aug, "
                            "--views/--targets, --fqe_policy) policy on its buffer or --dataset")
    stage.add_argument("--export_policy", nargs="?", const="", default=None, metavar="PREFIX",
                       help="write the trained BCQ (or --sqv, --aug, --views/--targets) greedy policy, or the one "
                            "named by PREFIX (behavioral, BCQ, SQV, BCQaug, SQVclean, ..., SQIL), as "
                            "models/{PREFIX}_{setting}_policy.pt (TorchScript; also .onnx where onnx is installed)")
    parser.add_argument("--fqe_policy", type=str, default=None, metavar="PREFIX",
                        help="--fqe: the trained policy by its results prefix (behavioral, BCQ, SQV, BCQaug, SQVclean, ..., SQIL); "
                             "default: the one --sqv/--aug/--views/--targets select")
    parser.add_argument("--sqv", action="store_true", help="stage 3 trains SQV instead of BCQ")
    parser.add_argument("--aug", action="store_true",
                        help="stage 3 trains BCQ on two augmented views without the swap (both on the mean target): "
                             "the control that separates SQV's augmentation from its swap")
    parser.add_argument("--views", choices=VIEWS, default=None,
                        help="stage 3 trains a two-view learner: independent (view k = (aug s, aug s'), the released "
                             "SQV code; --sqv and --aug) or clean (view 1 = (s, s'), view 2 = (aug s, aug s'))")
    parser.add_argument("--targets", choices=TARGETS, default=None,
                        help="the two-view learner's target rule: swap (SQV, the default), own (each view its own) "
                             "or mean (BCQ+aug, the default of --aug)")
    parser.add_argument("--with_sqil", action="store_true", help="--pipeline also runs SQIL and adds its row")
    parser.add_argument("--env", type=str, default=None,
                        help="gymnasium id: CartPole-v1, MinAtar/Breakout-v1, PongNoFrameskip-v4, ALE/Pong-v5, "
                             f"Pendulum-v1, Hopper-v5, ... (default {REFERENCE_ENV} as in the reference code; "
                             f"{PIPELINE_ENV} with --pipeline)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything; evaluation uses seed + 100")
    parser.add_argument("--max_timesteps", type=float, default=None,
                        help="env steps (stages 1-2) or training iterations (stage 3); default 1e6 "
                             "(--pipeline: per-stage budgets, see README)")
    parser.add_argument("--eval_episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--device", type=str, default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--out_dir", type=str, default=".", help="results/, models/ and buffers/ are made under it")
    parser.add_argument("--num_envs", type=int, default=64,
                        help="envs stepped together (one batched network call per step) for buffer generation "
                             "and evaluation; behavioral training always uses one")
    parser.add_argument("--buffer_device", type=str, default="auto",
                        help="where an Atari buffer's frames live: auto (the training device when they fit in "
                             "80%% of its free memory, else cpu), cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: the training forward passes under bfloat16 autocast (CPUs with AVX512-BF16/AMX, "
                             "and CUDA), weights, optimizer state, outputs, targets and losses in float32; acting "
                             "stays float32 (default fp32: the original's arithmetic)")
    parser.add_argument("--mmap", action="store_true",
                        help="offline training memory-maps the saved buffer's frames/states read-only instead of "
                             "copying them (seeds on one machine share one copy in the page cache)")
    parser.add_argument("--checkpoint_freq", type=int, default=None,
                        help="save the full training state every this many steps/iterations (default: --eval_freq); "
                             "SIGINT/SIGTERM also save one before exiting")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest complete checkpoint of this stage (start afresh if none)")
    parser.add_argument("--log_freq", type=int, default=1000,
                        help="write the learner's losses to results/{stage}_{setting}_train.csv every this many updates")
    parser.add_argument("--dataset", type=str, default=None, metavar="KIND:WHERE",
                        help="train BCQ/SQV/SQIL on a standard dataset instead of buffers/: dqn_replay:DIR (with "
                             "--ckpts), d4rl:FILE.hdf5 or minari:DATASET_ID (see README, Bring your own data)")
    parser.add_argument("--ckpts", type=str, default=None,
                        help="--dataset dqn_replay: the checkpoints to train on, e.g. 49,50")
    log = parser.add_argument_group("--dataset interactions:FILE (a ratings/click log, with --env InteractionLog-v0)")
    log.add_argument("--rec_columns", type=str, default=None,
                     help="a CSV/TSV log's user, item, rating (or behavior) and timestamp column names, in that "
                          "order (three for a click log); default user,item,rating,timestamp (a .dat needs none)")
    log.add_argument("--rec_reward", type=str, default=None,
                     help="threshold:X (reward 1 for a rating >= X), map:VALUE=REWARD,... or click; default threshold:4")
    log.add_argument("--rec_history", type=int, default=None, help="items in a state, N (default 5)")
    log.add_argument("--rec_holdout", type=int, default=None, help="each user's last k items held out (default 5)")
    log.add_argument("--rec_dim", type=int, default=None, help="item embedding size learned by ALS (default 16)")
    parser.add_argument("--item_embeddings", type=str, default=None, metavar="env|FILE.npy",
                        help="continuous BCQ/SQV as a recommender: act in the space of these item embeddings "
                             "(env: the env's own, e.g. ItemRecommendation-v0; or an (items, action dim) .npy)")
    parser.add_argument("--tensorboard", action="store_true", help="also log to a TensorBoard run under runs/")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the same scalars and the resolved config to Weights & Biases (the run is "
                             "{algo}_{setting}; WANDB_MODE=offline keeps it under OUT_DIR/wandb)")
    parser.add_argument("--wandb_project", type=str, default="bcq-sqv", help="--wandb: the project")
    parser.add_argument("--wandb_entity", type=str, default=None, help="--wandb: the entity (default: yours)")
    parser.add_argument("--wandb_group", type=str, default=None, help="--wandb: a group, e.g. the sweep's name")
    hyper = parser.add_argument_group("hyperparameters (default: the env's column of the README table)")
    for name, (kind, atari, regular, continuous, text) in PARAMETERS.items():
        default_text = f"Atari {atari}, discrete {regular}, continuous {continuous}"
        if kind is bool:
            hyper.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                               help=f"{text} ({default_text})")
        else:
            hyper.add_argument(f"--{name}", type=float if kind is int else kind, default=None, metavar="X",
                               help=f"{text} ({default_text})")
    return parser


REC_DEFAULTS = {"rec_columns": "user,item,rating,timestamp", "rec_reward": "threshold:4", "rec_history": 5,
                "rec_holdout": 5, "rec_dim": 16}


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sqv and args.aug:
        parser.error("--sqv and --aug are two different offline algorithms; give one")
    stage = args.train_behavioral or args.generate_buffer or args.sqil or args.hdqn or args.export_minari
    for flag in ("aug", "views", "targets"):
        if getattr(args, flag) and (stage or args.pipeline):
            parser.error(f"--{flag} selects the offline algorithm; use it without a stage flag")
    if args.sqv and stage:
        parser.error("--sqv selects the offline algorithm; use it without --train_behavioral/--generate_buffer/--sqil")
    if args.targets and (args.sqv or args.aug) and args.targets != ("swap" if args.sqv else "mean"):
        parser.error(f"--{'sqv' if args.sqv else 'aug'} means --targets {'swap' if args.sqv else 'mean'}; "
                     f"for --targets {args.targets} drop --{'sqv' if args.sqv else 'aug'}")
    if args.dataset and (args.train_behavioral or args.generate_buffer or args.pipeline or args.hdqn):
        parser.error("--dataset replaces the generated buffer of BCQ, SQV and SQIL; drop the stage flag")
    if args.ckpts and not (args.dataset or "").startswith("dqn_replay:"):
        parser.error("--ckpts goes with --dataset dqn_replay:DIR")
    given = [f"--{name}" for name in REC_DEFAULTS if getattr(args, name) is not None]
    if given and not (args.dataset or "").startswith("interactions:"):
        parser.error(f"{given[0]} goes with --dataset interactions:FILE")
    for name, value in REC_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.fqe_policy and not args.fqe:
        parser.error("--fqe_policy goes with --fqe")
    if args.with_sqil and not args.pipeline:
        parser.error("--with_sqil extends --pipeline; for SQIL alone use --sqil")
    return args


def resolve(args: argparse.Namespace, env: str, max_timesteps: float = 1e6, preset: dict | None = None):
    """The run's config: every unset flag from ``preset`` (pipeline) or the env's defaults; the family."""
    from common.envs.make import action_space_of, env_kind
    from common.errors import UserError
    from common.training.config import PARAMETERS, check_ranges, defaults, not_applicable, profile_of
    from common.training.runtime import setting_name

    kind = env_kind(env)
    continuous = not hasattr(action_space_of(env), "n")
    profile = profile_of(kind, continuous)
    base = defaults(profile, kind, env)
    unused = [name for name in PARAMETERS if getattr(args, name) is not None and not_applicable(name, base)]
    if unused:
        raise UserError(f"--{unused[0]} does not apply to {env} ({profile} env, {kind} observations); drop it")
    cfg = dict(vars(args), env=env, kind=kind, profile=profile, default_buffer_name=base["buffer_name"])
    for name, value in {**base, **(preset or {})}.items():
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
    check(cfg)
    return SimpleNamespace(**cfg), family_for(continuous)


def family_for(continuous: bool):
    if continuous:
        from continuous_BCQ import family
    else:
        from discrete_SQV import family
    return family


def check(cfg: dict) -> None:
    from common.errors import UserError
    from common.training.runtime import get_device

    device = get_device(cfg["device"])  # a bad --device fails here, before any file is written
    if cfg["precision"] == "bf16":
        import torch

        supported = (torch.cuda.is_bf16_supported() if device.type == "cuda"
                     else torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        if not supported:
            where = "this GPU" if device.type == "cuda" else "this CPU (it lacks AVX512-BF16/AMX)"
            raise UserError(f"--precision bf16: {where} has no fast bfloat16 arithmetic; use --precision fp32")
    if cfg["buffer_device"] != "auto":
        get_device(cfg["buffer_device"], "--buffer_device")
    if cfg["dataset"]:
        from common.data.datasets import parse, parse_ckpts

        if parse(cfg["dataset"])[0] == "dqn_replay":
            parse_ckpts(cfg["ckpts"])
    if cfg["item_embeddings"] is not None and cfg["profile"] != "continuous":
        raise UserError(f"--item_embeddings applies to continuous-action envs (e.g. ItemRecommendation-v0); "
                        f"{cfg['env']} has discrete actions")
    from common.learning.augment import SHIFTS

    if cfg["aug_shift"] is not None and cfg["aug_shift"] not in SHIFTS:
        raise UserError(f"--aug_shift {cfg['aug_shift']}: expected one of {', '.join(SHIFTS)}")
    if cfg["wandb"]:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise UserError("--wandb needs the wandb package: pip install -e '.[logging]' (or drop --wandb)") from None
    check_writable(cfg["out_dir"])


def check_writable(out_dir: str) -> None:
    """A clear error, before any work, when ``out_dir`` cannot be created or written (leaves nothing behind)."""
    import tempfile

    from common.errors import UserError

    existing = os.path.abspath(out_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"--out_dir {out_dir}: {existing} is a file, not a folder; choose another --out_dir")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserError(f"--out_dir {out_dir}: cannot write in {existing} ({err.strerror}); "
                        "choose a writable --out_dir") from None


def offline_algorithm(cfg):
    """The offline algorithm that --sqv, --aug, --views and --targets select (none of them: BCQ)."""
    from common.learning import algorithms

    two_views = cfg.sqv or cfg.aug or cfg.views
    return algorithms.offline_algorithm(cfg.views, cfg.targets or ("mean" if cfg.aug else "swap" if two_views else None))


def banner(stage: str, cfg) -> None:
    print("-" * 72)
    print(f"{stage} | env {cfg.env} ({cfg.profile}) | seed {cfg.seed} | {cfg.max_timesteps} steps")
    print("-" * 72)


def run_pipeline(args) -> None:
    from common.training import stages
    from common.envs.make import action_space_of, env_kind
    from common.training.config import profile_of

    env = args.env or PIPELINE_ENV
    profile = profile_of(env_kind(env), not hasattr(action_space_of(env), "n"))
    plan = PIPELINE[profile]
    behavioral_steps, buffer_steps, offline_steps = plan["budgets"]
    runs = [("behavioral", behavioral_steps, [], lambda c, f: stages.train_behavioral(c, f)),
            ("buffer", buffer_steps, ["behavioral"], lambda c, f: stages.generate_buffer(c, f)),
            ("BCQ", offline_steps, ["buffer"], lambda c, f: stages.train_offline(c, f, "BCQ")),
            ("SQV", offline_steps, ["buffer"], lambda c, f: stages.train_offline(c, f, "SQV"))]
    if args.with_sqil:
        runs.append(("SQIL", plan.get("sqil", offline_steps), ["buffer"], lambda c, f: stages.train_sqil(c, f)))
    summaries = {}
    for label, steps, reads, stage in runs:
        cfg, family = resolve(args, env, steps, plan["flags"])
        banner(f"{label} ({family.BEHAVIORAL if label == 'behavioral' else 'pipeline'})", cfg)
        named = {"buffer": f"buffer_{cfg.buffer_name}"}
        with stage_locks(cfg, named.get(label, label), [named.get(name, name) for name in reads]):
            summaries[label] = stage(cfg, family)
    print()
    print(f"Pipeline on {cfg.env}, seed {cfg.seed} (mean raw return over {cfg.eval_episodes} eval episodes)")
    print(f"{'':<22}{'return':>10}{'minutes':>10}")
    rows = [("behavioral (final)", summaries["behavioral"]["final_return"], summaries["behavioral"]["seconds"]),
            ("buffer policy", summaries["buffer"]["buffer_return"], summaries["buffer"]["seconds"]),
            ("BCQ (final)", summaries["BCQ"]["final_return"], summaries["BCQ"]["seconds"]),
            ("SQV (final)", summaries["SQV"]["final_return"], summaries["SQV"]["seconds"])]
    if "SQIL" in summaries:
        rows.append(("SQIL (final)", summaries["SQIL"]["final_return"], summaries["SQIL"]["seconds"]))
    for name, value, seconds in rows:
        print(f"{name:<22}{value:>10.1f}{seconds / 60:>10.1f}")
    print("buffer policy = mean raw return of the buffer's finished episodes (the noisy behavioral policy)")
    import os

    from plot import make_report

    report = make_report(os.path.join(cfg.out_dir, "results"), os.path.join(cfg.out_dir, "plots"))
    print(f"plots: {', '.join(report['figures'])}; table: {report['table']}")


def stage_locks(cfg, writes: str | None, reads: list[str]):
    """One run per setting and stage: the lock of the files this run writes, exclusive, and of those
    it reads, shared (runs that read one buffer go side by side; none writes it meanwhile)."""
    from contextlib import ExitStack

    from common.io import run_lock

    locks = ExitStack()
    with locks:
        for name, shared in [(writes, False)] * bool(writes) + [(name, True) for name in reads]:
            locks.enter_context(run_lock(cfg.out_dir, f"{name}_{cfg.setting}", f"the {name} stage of {cfg.setting}",
                                         shared))
        return locks.pop_all()


def stage_of(cfg, family):
    """What this command runs: (banner title, the files it writes, the files it reads, the work), the
    files named as their lock is (``behavioral``, ``buffer_Default``, ``BCQ``, ``FQE_SQV``, ...)."""
    from common.training import stages

    buffer = f"buffer_{cfg.buffer_name}"
    if cfg.train_behavioral:
        return f"train behavioral {family.BEHAVIORAL}", "behavioral", [], lambda: stages.train_behavioral(cfg, family)
    if cfg.generate_buffer:
        return "generate buffer", buffer, ["behavioral"], lambda: stages.generate_buffer(cfg, family)
    if cfg.sqil:
        return "train SQIL", "SQIL", [buffer], lambda: stages.train_sqil(cfg, family)
    if cfg.export_minari:
        return "export a Minari dataset", None, [buffer], lambda: stages.export_minari(cfg, family)
    if cfg.export_policy is not None:
        from common.reporting.export import export_trained_policy

        prefix = cfg.export_policy or offline_algorithm(cfg).prefix
        return (f"export the {prefix} policy", f"export_{prefix}", [prefix],
                lambda: export_trained_policy(cfg, family, prefix))
    if cfg.fqe:
        from common.reporting.ope import fitted_q_evaluation

        prefix = cfg.fqe_policy or offline_algorithm(cfg).prefix
        return (f"Fitted Q Evaluation of {prefix}", f"FQE_{prefix}", [prefix, buffer],
                lambda: fitted_q_evaluation(cfg, family, prefix))
    if cfg.hdqn:
        from discrete_SQV.hdqn import train_hdqn

        return "train h-DQN", "hDQN", [], lambda: train_hdqn(cfg)
    algo = offline_algorithm(cfg)
    return f"train {algo.label}", algo.prefix, [buffer], lambda: stages.train_offline(cfg, family, algo.prefix)


def main(argv=None) -> int:
    args = parse_args(argv)
    from common.errors import UserError
    from common.training.guards import Interrupted
    from common.training.runtime import keep_freed_memory

    keep_freed_memory()
    try:
        if args.pipeline:
            run_pipeline(args)
            return 0
        from common.training import stages

        cfg, family = resolve(args, args.env or REFERENCE_ENV)
        title, writes, reads, work = stage_of(cfg, family)
        banner(title, cfg)
        with stage_locks(cfg, writes, reads):
            work()
    except Interrupted as err:
        print(f"\n{err}", file=sys.stderr)
        return err.exit_code
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except OSError as err:
        import errno

        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        print(f"error: the disk is full ({os.strerror(err.errno)}{f': {err.filename}' if err.filename else ''}); "
              "nothing was left half-written (every file is written under a temporary name first): free some space, "
              "then run the same command again (plus --resume where the run saved a checkpoint)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
