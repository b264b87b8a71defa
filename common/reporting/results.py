"""Reading a results directory: the evaluation curves of every offline arm, the behavioral agent's and
the buffer's returns, the training episodes of h-DQN runs, and a run's final score."""
from __future__ import annotations

import csv
import os
import re
from collections import defaultdict

import numpy as np

from common.errors import UserError
from common.learning.algorithms import BY_NAME, OFFLINE

CURVES = tuple(a.prefix for a in OFFLINE)  # drawn and tabulated where present, in this order
BASELINE = BY_NAME["bcq"].prefix  # every other arm's change is measured against it
ARMS = tuple(prefix for prefix in CURVES if prefix != BASELINE)
VERSUS = f"vs_{BASELINE}"  # a summary row's key: arm → relative change against the baseline
KINDS = "|".join([*sorted(CURVES, key=len, reverse=True), "behavioral", "buffer_returns"])  # longest prefix first
PATTERN = re.compile(rf"^({KINDS})_(.+)_(-?\d+)\.npy$")
# h-DQN's and the flat DQN's extrinsic return per training episode (main.py's h-DQN stage and behavioral stage)
EPISODE_KINDS = {"hDQN": ("h-DQN", "tab:green"), "behavioral": ("flat DQN", "tab:gray")}  # label, color
EPISODES = re.compile(rf"^({'|'.join(EPISODE_KINDS)})_(.+)_(-?\d+)_episodes\.npy$")

Runs = dict[int, np.ndarray]  # seed → array
Found = dict[str, dict[str, Runs]]  # env → kind → seed → array


def load_checked(path: str, what: str) -> np.ndarray:
    """The array of a results file, which must be ``what`` (a 1-D array of numbers, non-empty where
    ``what`` says so); anything else is a one-line `UserError`."""
    fix = f"expected {what} as python main.py writes it: delete or regenerate the file"
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"results file {path} is not a readable .npy ({str(err).splitlines()[0][:80]}); {fix}") from None
    if not isinstance(values, np.ndarray):  # an .npz archive
        raise UserError(f"results file {path} is an .npz archive; {fix}")
    if values.ndim != 1 or values.dtype.kind not in "iuf" or (not values.size and what.startswith("a non")):
        raise UserError(f"results file {path} holds {values.dtype} values of shape {values.shape}; {fix}")
    if not np.isfinite(values).all():
        raise UserError(f"results file {path} holds non-finite values (nan or inf); {fix}")
    return values


def read_steps(path: str) -> list[int]:
    """The ``step`` column of a run's eval CSV, whole numbers in increasing order; anything else is a
    one-line `UserError`."""
    fix = "delete it (the report then numbers the evaluations 1, 2, ...) or rerun the stage"
    try:
        with open(path, newline="") as f:
            steps = [int(row["step"]) for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"eval log {path} cannot be read ({err}); {fix}") from None
    except (KeyError, TypeError, ValueError):
        raise UserError(f"eval log {path} is not a CSV with whole-number steps in a 'step' column; {fix}") from None
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise UserError(f"eval log {path}: its steps do not increase; {fix}")
    return steps


def collect(results_dir: str) -> Found:
    """env → kind (BCQ, SQV, behavioral, buffer_returns) → seed → array of returns. Every results
    file the report reads (these and the ``*_episodes.npy`` of h-DQN runs) must be a 1-D array of
    numbers, non-empty where it holds evaluations; anything else is a one-line `UserError`."""
    found: dict = defaultdict(lambda: defaultdict(dict))
    for name in sorted(os.listdir(results_dir)):
        match, episodes = PATTERN.match(name), EPISODES.match(name)
        if not (match or episodes):
            continue
        what = ("a 1-D array of episode returns" if episodes or match[1] == "buffer_returns"
                else "a non-empty 1-D array of evaluation returns")
        values = load_checked(os.path.join(results_dir, name), what)
        if match:
            log = os.path.join(results_dir, f"{name[:-len('.npy')]}_eval.csv")
            if os.path.exists(log):
                read_steps(log)  # checked before a figure is drawn (`eval_steps` reads it again then)
            found[match[2]][match[1]][int(match[3])] = values
    return found


def collect_episodes(results_dir: str) -> Found:
    """env → kind (hDQN, behavioral) → seed → extrinsic return per training episode."""
    runs: dict = defaultdict(lambda: defaultdict(dict))
    for name in sorted(os.listdir(results_dir)):
        match = EPISODES.match(name)
        if match:
            runs[match[2]][match[1]][int(match[3])] = np.load(os.path.join(results_dir, name))
    return runs


def eval_steps(results_dir: str, algo: str, env: str, seed: int, n: int) -> tuple[np.ndarray, str]:
    """Iterations of each evaluation from the run's eval CSV, or 1, 2, ... when it is absent."""
    path = os.path.join(results_dir, f"{algo}_{env}_{seed}_eval.csv")
    if os.path.exists(path):
        steps = read_steps(path)
        if len(steps) >= n:
            return np.array(steps[:n]), "training iterations"
    return np.arange(1, n + 1), "evaluation"


def final_score(curve: np.ndarray, last: int = 1) -> float:
    """A run's final score: the mean of its last ``last`` evaluations (of all, where it has fewer)."""
    if last < 1:
        raise ValueError(f"a final score averages at least the last evaluation, not the last {last}")
    return float(curve[-last:].mean())


def final(runs: Runs, last: int = 1) -> np.ndarray:
    """Each seed's final score, in seed order."""
    return np.array([final_score(runs[s], last) for s in sorted(runs)])


def buffer_means(runs: Runs | None) -> np.ndarray | None:
    """Per-seed mean episode return of the buffer; seeds whose buffer finished no episode are skipped."""
    means = [runs[s].mean() for s in sorted(runs or {}) if len(runs[s])]
    return np.array(means) if means else None
