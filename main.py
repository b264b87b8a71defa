"""Offline RL with batch-constrained Q-learning: behavioral agent → replay buffer → BCQ / SQV.

    python main.py --train_behavioral --env CartPole-v1   # 1. train the behavioral DQN online
    python main.py --generate_buffer --env CartPole-v1    # 2. roll it out with noise, save a buffer
    python main.py --env CartPole-v1                      # 3. train discrete BCQ on that buffer
    python main.py --env CartPole-v1 --sqv                #    ... or SQV
    python main.py --pipeline                             # all four on CartPole-v1, then a table
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from types import SimpleNamespace

PIPELINE_ENV = "CartPole-v1"
PIPELINE_STEPS = 30_000


def parse_args(argv=None) -> argparse.Namespace:
    from discrete_SQV.params import PARAMETERS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--train_behavioral", action="store_true", help="stage 1: train the behavioral agent online")
    stage.add_argument("--generate_buffer", action="store_true", help="stage 2: roll the behavioral agent out, save a buffer")
    stage.add_argument("--pipeline", action="store_true",
                       help=f"run behavioral → buffer → BCQ → SQV (default env {PIPELINE_ENV}, "
                            f"{PIPELINE_STEPS} steps per stage) and print a table")
    parser.add_argument("--sqv", action="store_true", help="stage 3 trains SQV instead of BCQ")
    parser.add_argument("--env", type=str, default=None,
                        help="gymnasium id: CartPole-v1, MinAtar/Breakout-v1, PongNoFrameskip-v4, ALE/Pong-v5, ... "
                             f"(default PongNoFrameskip-v0 as in the reference code; {PIPELINE_ENV} with --pipeline)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything; evaluation uses seed + 100")
    parser.add_argument("--buffer_name", type=str, default="Default", help="buffer files are buffers/{name}_{env}_{seed}_*")
    parser.add_argument("--max_timesteps", type=float, default=None,
                        help=f"env steps (stages 1-2) or training iterations (stage 3); default 1e6 "
                             f"({PIPELINE_STEPS} with --pipeline)")
    parser.add_argument("--BCQ_threshold", type=float, default=0.3, help="BCQ keeps actions with π(a|s)/max π > τ")
    parser.add_argument("--low_noise_p", type=float, default=0.2, help="buffer: probability of a low-noise episode")
    parser.add_argument("--rand_action_p", type=float, default=0.2, help="buffer: random-action probability otherwise")
    parser.add_argument("--eval_episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--device", type=str, default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--out_dir", type=str, default=".", help="results/, models/ and buffers/ are made under it")
    hyper = parser.add_argument_group("hyperparameters (default: the Atari or regular column of DESIGN §3)")
    for name, (kind, atari, regular, text) in PARAMETERS.items():
        default_text = f"Atari {atari}, others {regular}"
        if kind is bool:
            hyper.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                               help=f"{text} ({default_text})")
        else:
            hyper.add_argument(f"--{name}", type=float if kind is int else kind, default=None, metavar="X",
                               help=f"{text} ({default_text})")
    args = parser.parse_args(argv)
    if args.sqv and (args.train_behavioral or args.generate_buffer):
        parser.error("--sqv selects the offline algorithm; use it without --train_behavioral/--generate_buffer")
    return args


def resolve(args: argparse.Namespace, env: str) -> SimpleNamespace:
    """Fill every unset hyperparameter from the env kind's defaults; cast counts to int."""
    from common.envs import env_kind
    from common.runtime import setting_name
    from discrete_SQV.params import PARAMETERS, defaults

    kind = env_kind(env)
    cfg = dict(vars(args), env=env, kind=kind)
    for name, value in defaults(kind).items():
        if cfg[name] is None:
            cfg[name] = value
        if PARAMETERS[name][0] is int and cfg[name] is not None:
            cfg[name] = int(cfg[name])
    steps = cfg["max_timesteps"] if cfg["max_timesteps"] is not None else (PIPELINE_STEPS if args.pipeline else 1e6)
    cfg["max_timesteps"] = int(steps)
    cfg["setting"] = setting_name(env, args.seed)
    cfg["command"] = " ".join(["python main.py", *sys.argv[1:]])
    check(cfg)
    return SimpleNamespace(**cfg)


def check(cfg: dict) -> None:
    from common.errors import UserError

    positive = ["max_timesteps", "eval_freq", "eval_episodes", "batch_size", "buffer_size", "train_freq",
                "target_update_freq", "eps_decay_period", "frame_skip", "frame_size", "state_history"]
    for name in positive:
        if cfg[name] is not None and cfg[name] <= 0:
            raise UserError(f"--{name} must be positive, got {cfg[name]}")
    for name in ("BCQ_threshold", "low_noise_p", "rand_action_p", "eval_eps", "initial_eps", "end_eps", "tau"):
        if not 0 <= cfg[name] <= 1:
            raise UserError(f"--{name} must lie in [0, 1], got {cfg[name]}")


def banner(stage: str, cfg) -> None:
    print("-" * 60)
    print(f"{stage} | env {cfg.env} ({cfg.kind}) | seed {cfg.seed} | {cfg.max_timesteps} steps")
    print("-" * 60)


def run_pipeline(args) -> None:
    from discrete_SQV import stages

    cfg = resolve(args, args.env or PIPELINE_ENV)
    rows = []
    for label, stage in (("behavioral DQN", stages.train_behavioral), ("buffer", stages.generate_buffer),
                         ("BCQ", lambda c: stages.train_offline(c, "BCQ")),
                         ("SQV", lambda c: stages.train_offline(c, "SQV"))):
        banner(label, cfg)
        rows.append((label, stage(cfg)))
    behavioral, buffer, bcq, sqv = (summary for _, summary in rows)
    print()
    print(f"Pipeline on {cfg.env}, seed {cfg.seed} (mean raw return over {cfg.eval_episodes} eval episodes)")
    print(f"{'':<22}{'return':>10}{'minutes':>10}")
    table = [("behavioral (final)", behavioral["final_return"], behavioral["seconds"]),
             ("buffer policy", buffer["buffer_return"], buffer["seconds"]),
             ("BCQ (final)", bcq["final_return"], bcq["seconds"]),
             ("SQV (final)", sqv["final_return"], sqv["seconds"])]
    for name, value, seconds in table:
        print(f"{name:<22}{value:>10.1f}{seconds / 60:>10.1f}")
    print("buffer policy = mean raw return of the buffer's finished episodes (noisy behavioral policy)")


def main(argv=None) -> int:
    args = parse_args(argv)
    from common.errors import UserError

    try:
        if args.pipeline:
            run_pipeline(args)
            return 0
        from discrete_SQV import stages

        cfg = resolve(args, args.env or "PongNoFrameskip-v0")
        if cfg.train_behavioral:
            banner("train behavioral DQN", cfg)
            stages.train_behavioral(cfg)
        elif cfg.generate_buffer:
            banner("generate buffer", cfg)
            stages.generate_buffer(cfg)
        else:
            algo = "SQV" if cfg.sqv else "BCQ"
            banner(f"train {algo}", cfg)
            stages.train_offline(cfg, algo)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
