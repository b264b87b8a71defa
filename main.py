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

from common.errors import Parser
from common.training.flags import PIPELINE_ENV, REFERENCE_ENV

# --pipeline budgets per profile and stage (behavioral env steps, buffer env steps, offline iterations),
# plus flags it sets unless given. Chosen so the four stages finish in under 10 minutes on 2 CPU cores
# for classic control (Atari takes far longer on a CPU).
PIPELINE = {
    "atari": {"budgets": (50_000, 50_000, 50_000), "flags": {}, "sqil": 50_000},
    "regular": {"budgets": (50_000, 50_000, 50_000), "flags": {}, "sqil": 30_000},
    "continuous": {"budgets": (15_000, 50_000, 5_000), "flags": {"start_timesteps": 1_000, "eval_freq": 1_000}},
}


def build_parser() -> argparse.ArgumentParser:
    """The flags of `common.training.flags.FLAGS`, then one per hyperparameter of `PARAMETERS`."""
    from common.training.config import PARAMETERS
    from common.training.flags import FLAGS, STAGE

    parser = Parser("main.py", description=__doc__)
    groups = {STAGE: parser.add_mutually_exclusive_group()}
    for flag in FLAGS:
        if flag.group is not None and flag.group not in groups:
            groups[flag.group] = parser.add_argument_group(flag.group)
        flag.add_to(groups.get(flag.group, parser))
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


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, with the rules that tie flags together (usage errors: one line, exit 2)."""
    from common.training.flags import REC_DEFAULTS

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
    if args.fqe_policy and not args.fqe:
        parser.error("--fqe_policy goes with --fqe")
    if args.with_sqil and not args.pipeline:
        parser.error("--with_sqil extends --pipeline; for SQIL alone use --sqil")
    return args


def resolve(args: argparse.Namespace, env: str, max_timesteps: float = 1e6, preset: dict | None = None):
    """The run's typed, checked config (`common.training.config.resolve`) and its family."""
    from common.training.config import CONTINUOUS, resolve as resolve_config

    cfg = resolve_config(args, env, max_timesteps, preset)
    return cfg, family_for(cfg.profile == CONTINUOUS)


def family_for(continuous: bool):
    if continuous:
        from continuous_BCQ import family
    else:
        from discrete_SQV import family
    return family


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
    from common.learning.algorithms import BY_NAME
    from common.training import stages
    from common.envs.make import action_space_of, env_kind
    from common.training.config import profile_of

    env = args.env or PIPELINE_ENV
    profile = profile_of(env_kind(env), not hasattr(action_space_of(env), "n"))
    plan = PIPELINE[profile]
    behavioral_steps, buffer_steps, offline_steps = plan["budgets"]
    bcq, sqv, sqil = (BY_NAME[name].prefix for name in ("bcq", "sqv", "sqil"))
    runs = [("behavioral", behavioral_steps, [], lambda c, f: stages.train_behavioral(c, f)),
            ("buffer", buffer_steps, ["behavioral"], lambda c, f: stages.generate_buffer(c, f)),
            (bcq, offline_steps, ["buffer"], lambda c, f: stages.train_offline(c, f, bcq)),
            (sqv, offline_steps, ["buffer"], lambda c, f: stages.train_offline(c, f, sqv))]
    if args.with_sqil:
        runs.append((sqil, plan.get("sqil", offline_steps), ["buffer"], lambda c, f: stages.train_sqil(c, f)))
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
            ("buffer policy", summaries["buffer"]["buffer_return"], summaries["buffer"]["seconds"])]
    rows += [(f"{name} (final)", summaries[name]["final_return"], summaries[name]["seconds"])
             for name in (bcq, sqv, sqil) if name in summaries]
    for name, value, seconds in rows:
        print(f"{name:<22}{value:>10.1f}{seconds / 60:>10.1f}")
    print("buffer policy = mean raw return of the buffer's finished episodes (the noisy behavioral policy)")
    from common.reporting.report import make_report

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
    from common.learning.algorithms import BY_NAME
    from common.training import stages

    buffer = f"buffer_{cfg.buffer_name}"
    if cfg.train_behavioral:
        return f"train behavioral {family.BEHAVIORAL}", "behavioral", [], lambda: stages.train_behavioral(cfg, family)
    if cfg.generate_buffer:
        return "generate buffer", buffer, ["behavioral"], lambda: stages.generate_buffer(cfg, family)
    if cfg.sqil:
        sqil = BY_NAME["sqil"].prefix
        return f"train {sqil}", sqil, [buffer], lambda: stages.train_sqil(cfg, family)
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
