"""Every command-line flag that is not a hyperparameter: one table for the parser and the config.

Each `Flag` is one ``argparse`` argument (its keyword arguments as given) and one field of the run's
`common.training.config.Config`, in this order. The hyperparameters (env-dependent defaults) are the
other table, `common.training.config.PARAMETERS`. ``group``: ``stage`` flags are mutually exclusive;
another string puts the flag in a titled argument group of ``--help``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.learning.algorithms import TARGETS, VIEWS

PIPELINE_ENV = "CartPole-v1"
REFERENCE_ENV = "PongNoFrameskip-v0"
STAGE = "stage"
LOG = "--dataset interactions:FILE (a ratings/click log, with --env InteractionLog-v0)"
# Defaults of the log's flags, applied after parsing (None at parse time means "not given").
REC_DEFAULTS = {"rec_columns": "user,item,rating,timestamp", "rec_reward": "threshold:4", "rec_history": 5,
                "rec_holdout": 5, "rec_dim": 16}


@dataclass(frozen=True)
class Flag:
    name: str
    type: type                 # the config field's type (None allowed where the default is None)
    help: str
    default: Any = None
    group: str | None = None
    argparse: dict = field(default_factory=dict)  # action, choices, metavar, nargs, const, type

    def add_to(self, parser) -> None:
        kwargs = {"default": self.default, "help": self.help, **self.argparse}
        if self.type is bool and "action" not in kwargs:
            kwargs["action"] = "store_true"
        elif "action" not in kwargs and "type" not in kwargs and "choices" not in kwargs:
            kwargs["type"] = self.type
        parser.add_argument(f"--{self.name}", **kwargs)


def _switch(name: str, help: str, group: str | None = None) -> Flag:
    return Flag(name, bool, help, False, group)


FLAGS: tuple[Flag, ...] = (
    _switch("train_behavioral", "stage 1: train the behavioral agent online", STAGE),
    _switch("generate_buffer", "stage 2: roll the behavioral agent out, save a buffer", STAGE),
    _switch("pipeline", f"run behavioral → buffer → BCQ → SQV (default env {PIPELINE_ENV}) and print a table", STAGE),
    _switch("sqil", "SQIL (discrete): learn online with the generated buffer as demonstrations", STAGE),
    _switch("hdqn", "h-DQN (meta-controller + controller), e.g. on DiscreteStochasticDecisionProcess-v0", STAGE),
    Flag("export_minari", str, "write this env and seed's saved buffer as a Minari dataset (vector/MinAtar states)",
         group=STAGE, argparse={"metavar": "DATASET_ID"}),
    _switch("fqe", "off-policy evaluation: Fitted Q Evaluation of the trained BCQ (or --sqv, --aug, "
                   "--views/--targets, --fqe_policy) policy on its buffer or --dataset", STAGE),
    Flag("export_policy", str, "write the trained BCQ (or --sqv, --aug, --views/--targets) greedy policy, or the one "
                               "named by PREFIX (behavioral, BCQ, SQV, BCQaug, SQVclean, ..., SQIL), as "
                               "models/{PREFIX}_{setting}_policy.pt (TorchScript; also .onnx where onnx is installed)",
         group=STAGE, argparse={"nargs": "?", "const": "", "metavar": "PREFIX"}),
    Flag("fqe_policy", str, "--fqe: the trained policy by its results prefix (behavioral, BCQ, SQV, BCQaug, SQVclean, "
                            "..., SQIL); default: the one --sqv/--aug/--views/--targets select",
         argparse={"metavar": "PREFIX"}),
    _switch("sqv", "stage 3 trains SQV instead of BCQ"),
    _switch("aug", "stage 3 trains BCQ on two augmented views without the swap (both on the mean target): "
                   "the control that separates SQV's augmentation from its swap"),
    Flag("views", str, "stage 3 trains a two-view learner: independent (view k = (aug s, aug s'), the released "
                       "SQV code; --sqv and --aug) or clean (view 1 = (s, s'), view 2 = (aug s, aug s'))",
         argparse={"choices": VIEWS}),
    Flag("targets", str, "the two-view learner's target rule: swap (SQV, the default), own (each view its own) "
                         "or mean (BCQ+aug, the default of --aug)", argparse={"choices": TARGETS}),
    _switch("with_sqil", "--pipeline also runs SQIL and adds its row"),
    Flag("env", str, "gymnasium id: CartPole-v1, MinAtar/Breakout-v1, PongNoFrameskip-v4, ALE/Pong-v5, "
                     f"Pendulum-v1, Hopper-v5, ... (default {REFERENCE_ENV} as in the reference code; "
                     f"{PIPELINE_ENV} with --pipeline)"),
    Flag("seed", int, "seed of everything; evaluation uses seed + 100", 0),
    Flag("max_timesteps", int, "env steps (stages 1-2) or training iterations (stage 3); default 1e6 "
                               "(--pipeline: per-stage budgets, see README)", argparse={"type": float}),
    Flag("eval_episodes", int, "episodes per evaluation", 10),
    Flag("device", str, "cpu, cuda or cuda:N (default: cuda when available)"),
    Flag("out_dir", str, "results/, models/ and buffers/ are made under it", "."),
    Flag("num_envs", int, "envs stepped together (one batched network call per step) for buffer generation "
                          "and evaluation; behavioral training always uses one", 64),
    Flag("buffer_device", str, "where an Atari buffer's frames live: auto (the training device when they fit in "
                               "80%% of its free memory, else cpu), cpu, cuda or cuda:N", "auto"),
    Flag("precision", str, "bf16: the training forward passes under bfloat16 autocast (CPUs with AVX512-BF16/AMX, "
                           "and CUDA), weights, optimizer state, outputs, targets and losses in float32; acting "
                           "stays float32 (default fp32: the original's arithmetic)", "fp32",
         argparse={"choices": ("fp32", "bf16")}),
    _switch("mmap", "offline training memory-maps the saved buffer's frames/states read-only instead of "
                    "copying them (seeds on one machine share one copy in the page cache)"),
    Flag("checkpoint_freq", int, "save the full training state every this many steps/iterations (default: "
                                 "--eval_freq); SIGINT/SIGTERM also save one before exiting"),
    _switch("resume", "continue from the newest complete checkpoint of this stage (start afresh if none)"),
    Flag("log_freq", int, "write the learner's losses to results/{stage}_{setting}_train.csv every this many "
                          "updates", 1000),
    Flag("dataset", str, "train BCQ/SQV/SQIL on a standard dataset instead of buffers/: dqn_replay:DIR (with "
                         "--ckpts), d4rl:FILE.hdf5 or minari:DATASET_ID (see README, Bring your own data)",
         argparse={"metavar": "KIND:WHERE"}),
    Flag("ckpts", str, "--dataset dqn_replay: the checkpoints to train on, e.g. 49,50"),
    Flag("rec_columns", str, "a CSV/TSV log's user, item, rating (or behavior) and timestamp column names, in that "
                             "order (three for a click log); default user,item,rating,timestamp (a .dat needs none)",
         group=LOG),
    Flag("rec_reward", str, "threshold:X (reward 1 for a rating >= X), map:VALUE=REWARD,... or click; default "
                            "threshold:4", group=LOG),
    Flag("rec_history", int, "items in a state, N (default 5)", group=LOG),
    Flag("rec_holdout", int, "each user's last k items held out (default 5)", group=LOG),
    Flag("rec_dim", int, "item embedding size learned by ALS (default 16)", group=LOG),
    Flag("item_embeddings", str, "continuous BCQ/SQV as a recommender: act in the space of these item embeddings "
                                 "(env: the env's own, e.g. ItemRecommendation-v0; or an (items, action dim) .npy)",
         argparse={"metavar": "env|FILE.npy"}),
    _switch("tensorboard", "also log to a TensorBoard run under runs/"),
    _switch("wandb", "also log the same scalars and the resolved config to Weights & Biases (the run is "
                     "{algo}_{setting}; WANDB_MODE=offline keeps it under OUT_DIR/wandb)"),
    Flag("wandb_project", str, "--wandb: the project", "bcq-sqv"),
    Flag("wandb_entity", str, "--wandb: the entity (default: yours)"),
    Flag("wandb_group", str, "--wandb: a group, e.g. the sweep's name"),
)
