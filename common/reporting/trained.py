"""Trained models as the stages saved them: loading one for a stage that uses it (``--fqe``,
``--export_policy``), with a clear error where it is missing, unreadable or trained with other flags."""
from __future__ import annotations

import json
import os

from common.errors import UserError


def trained_agent(cfg, family, info, device, algo_prefix: str):
    """The model saved under ``models/{algo_prefix}_{setting}_*`` (behavioral, BCQ, SQV, ..., SQIL),
    loaded as `common.training.stages` loads models, with a clear error where it is missing or unreadable.

    Two-view learners (SQV, BCQ+aug, ...) are built as BCQ: the same networks, file names and acting
    (their augmentation, which would need the buffer, only changes training)."""
    from common.learning.algorithms import BY_PREFIX
    from common.training.paths import command, model_prefix

    if algo_prefix == "behavioral":
        agent, how = family.behavioral_agent(info, cfg, device), "--train_behavioral"
    elif algo_prefix == "SQIL" and hasattr(family, "sqil_agent"):
        agent, how = family.sqil_agent(info, cfg, device), "--sqil"
    elif algo_prefix in BY_PREFIX and BY_PREFIX[algo_prefix].stage == "offline":
        algorithm = BY_PREFIX[algo_prefix]
        agent = family.offline_agent("BCQ" if algorithm.two_views else algo_prefix, info, cfg, device, None)
        how = " ".join(algorithm.flags)
    else:
        raise UserError(f"no trained policy called {algo_prefix!r}; use behavioral, "
                        f"{', '.join(p for p, a in BY_PREFIX.items() if a.stage == 'offline')}"
                        + (" or SQIL" if hasattr(family, "sqil_agent") else ""))
    agent.load_trained(model_prefix(cfg, algo_prefix), algo_prefix, cfg.env, command(cfg, how))
    return agent


# Flags that shape acting but are not stored in the model files: BCQ/SQV's, and DQN/SQIL/DDPG's.
ACTING_FLAGS = ("BCQ_threshold", "pixel_scale", "repeat_num", "phi", "item_embeddings")
ONLINE_ACTING_FLAGS = ("pixel_scale",)


def check_acting_flags(cfg, algo_prefix: str) -> None:
    """A clear error where a flag that shapes acting differs from the one the model was trained with
    (as ``results/{algo_prefix}_{setting}_config.json`` recorded it; nothing to check without it)."""
    path = os.path.join(cfg.out_dir, "results", f"{algo_prefix}_{cfg.setting}_config.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        trained = json.load(f)
    flags = ONLINE_ACTING_FLAGS if algo_prefix in ("behavioral", "SQIL") else ACTING_FLAGS
    differ = [f"--{name} {trained[name]} (given: {getattr(cfg, name, None)})" for name in flags
              if name in trained and trained[name] != getattr(cfg, name, None)]
    if differ:
        raise UserError(f"{algo_prefix} for {cfg.setting} was trained with {', '.join(differ)}; export it with the "
                        f"same flags (they shape acting but are not stored in the model files)")
