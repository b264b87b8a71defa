"""A sweep's YAML config, read and checked before anything runs: every key known, every value of the
type the sweep needs, so a typo or a wrong type is one line (exit code 2) up front rather than a
traceback or a silently different grid after hours of runs."""
from __future__ import annotations

import os
import sys

from common.learning.algorithms import ALGORITHMS, BY_NAME

KEYS = ("out_dir", "envs", "seeds", "algos", "flags", "stages", "env_flags", "resources", "last_evals")
STAGES = ("behavioral", "buffer", *dict.fromkeys(a.stage for a in ALGORITHMS))  # offline, sqil
RESOURCES = ("num_cpus", "num_gpus")


class ConfigError(SystemExit):
    """A bad sweep config: its one line goes to stderr and the sweep exits with code 2."""

    def __init__(self, message: str):
        print(message, file=sys.stderr)
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def load_config(path: str) -> dict:
    """The sweep config of a YAML file, checked (`problem`), with ``out_dir`` made absolute; a `ConfigError`
    where it cannot be read or is not a sweep config."""
    try:
        import yaml
    except ImportError:
        raise ConfigError("error: sweep configs are YAML and PyYAML is not installed: pip install -e '.[sweep]'") from None

    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except OSError as err:
        raise ConfigError(f"error: cannot read sweep config {path} ({err.strerror})")
    except UnicodeDecodeError:
        raise ConfigError(f"error: sweep config {path} is not UTF-8 text") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"error: sweep config {path} is not valid YAML ({str(err).splitlines()[0]})")
    message = problem(config)
    if message:
        raise ConfigError(f"error: sweep config {path}: {message}{'' if '--help' in message else ' (see sweep.py --help)'}")
    config["out_dir"] = os.path.abspath(config["out_dir"])  # one place for runs, markers and results
    return config


def problem(config) -> str | None:
    """What makes ``config`` (parsed YAML) not a sweep config, or None."""
    if not isinstance(config, dict):
        return "not a mapping of keys (out_dir, envs, seeds, algos, ...)"
    missing = [k for k in ("out_dir", "envs", "seeds", "algos") if k not in config]
    if missing:
        return f"lacks '{missing[0]}'"
    unknown = [k for k in config if k not in KEYS]
    if unknown:
        return f"unknown key '{unknown[0]}'; the keys are {', '.join(KEYS)}"
    if not isinstance(config["out_dir"], str) or not config["out_dir"]:
        return "out_dir must be a folder's path"
    from common.training.config import RANGES  # main.py's range of --seed

    seed_range = RANGES["seed"]
    in_range = lambda s: seed_range.low <= s <= seed_range.high
    for key, kind, check in (("envs", str, bool), ("seeds", int, in_range), ("algos", str, BY_NAME.get)):
        values = config[key]
        if not isinstance(values, list) or not values:
            return f"{key} must be a non-empty list, e.g. {key}: [{'0, 1' if kind is int else '...'}]"
        bad = [v for v in values if type(v) is not kind or not check(v)]
        if bad:
            what = {"envs": "an env id", "seeds": f"an integer in [0, {seed_range.high:.0f}]",
                    "algos": f"an algorithm ({', '.join(BY_NAME)})"}[key]
            return f"{key}: {bad[0]!r} is not {what}"
        if len(set(values)) < len(values):
            return f"{key} lists {next(v for v in values if values.count(v) > 1)!r} twice"
    return flags_problem(config) or resources_problem(config)


def flags_problem(config: dict) -> str | None:
    """Where ``flags``, ``stages`` or ``env_flags`` is not a mapping of main.py's flags to values."""
    from common.training.config import PARAMETERS  # main.py's flags: its switches and its hyperparameters
    from common.training.flags import FLAGS
    known = {flag.name for flag in FLAGS} | set(PARAMETERS)
    switches = {name for name, (kind, *_) in PARAMETERS.items() if kind is bool}  # --X and --no-X
    known |= {f"no-{name}" for name in switches}

    def mapping_problem(where: str, values) -> str | None:
        if values is None:
            return None
        if not isinstance(values, dict):
            return f"{where} must be a mapping of main.py flags to values, e.g. {{eval_episodes: 10}}"
        for name, value in values.items():
            if name not in known:
                return f"{where}: '{name}' is not a main.py flag; python main.py --help lists them"
            if name in switches and value is False:  # as_flags writes nothing for False: the default would stay
                return f"{where}: {name}: false would leave the env's default; write no-{name}: true"
            if isinstance(value, (dict, list)):
                return f"{where}: {name} must be a single value, not {value!r}"
        return None

    for where, values in (("stages", config.get("stages")), ("env_flags", config.get("env_flags"))):
        if values is not None and not isinstance(values, dict):
            return f"{where} must be a mapping"
    stages, env_flags = config.get("stages") or {}, config.get("env_flags") or {}
    if any(stage not in STAGES for stage in stages):
        return f"stages: '{next(s for s in stages if s not in STAGES)}' is not a stage; use {', '.join(STAGES)}"
    if any(env not in config["envs"] for env in env_flags):
        return f"env_flags: '{next(e for e in env_flags if e not in config['envs'])}' is not one of the config's envs"
    checks = [("flags", config.get("flags"))] + [(f"stages.{s}", v) for s, v in stages.items()]
    checks += [(f"env_flags.{e}", v) for e, v in env_flags.items()]
    return next((p for p in (mapping_problem(where, values) for where, values in checks) if p), None)


def resources_problem(config: dict) -> str | None:
    """Where ``resources`` or ``last_evals`` is out of range."""
    resources = config.get("resources") or {}
    if not isinstance(resources, dict) or any(k not in RESOURCES for k in resources):
        return f"resources must be a mapping of {' and '.join(RESOURCES)}"
    for key, value in resources.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value:
            return f"resources.{key} must be a non-negative number, not {value!r}"
    if resources.get("num_cpus", 1) <= 0:
        return "resources.num_cpus must be positive"
    last = config.get("last_evals", 1)
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        return f"last_evals must be a positive integer (the report's final score: the mean of the last N), not {last!r}"
    return None
