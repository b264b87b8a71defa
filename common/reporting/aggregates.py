"""Aggregates over a group of envs (Atari games, human-normalized; the other envs with a measured random
score, behavior-normalized): the IQM over envs × seeds, the paired differences X − Y on the same
buffers, rliable's probability of improvement and performance profiles, all over the same envs."""
from __future__ import annotations

from typing import Callable

import numpy as np

from common.learning.algorithms import BY_PREFIX, CONTRASTS
from common.reporting.results import ARMS, BASELINE, CURVES, Found, final, final_score
from common.reporting.scores import (beats, behavior_normalized, human_normalized, interval_estimate,
                                     interval_estimates, iqm, paired_difference, probability_of_improvement,
                                     random_score)

Normalize = Callable[[np.ndarray], np.ndarray]
Normalizer = Callable[[str, dict, int], "Normalize | None"]  # (env, kinds, last) → its normalizing function


def atari_normalizer(env: str, kinds: dict, last: int) -> Normalize | None:
    """Atari games with published scores: (score − random) / (human − random)."""
    return None if human_normalized(env, 0.0) is None else (lambda scores: human_normalized(env, scores))


def behavior_normalizer(env: str, kinds: dict, last: int) -> Normalize | None:
    """Other envs with a known random score, against their behavioral agent's seed-mean final return;
    left out where that agent does not beat random play by more than twice the standard error of the
    difference (its scale would be noise)."""
    random = random_score(env)
    if random is None or human_normalized(env, 0.0) is not None or not kinds.get("behavioral"):
        return None
    behavioral = final(kinds["behavioral"], last)
    if not beats(behavioral, random):
        return None
    return lambda scores: behavior_normalized(scores, random[0], float(behavioral.mean()))


# name → (normalizer, the group's title, the figure's panel name and score axis)
AGGREGATES = {
    "Atari": (atari_normalizer, "Atari games with published human scores, human-normalized", "Atari",
              "human-normalized score"),
    "other": (behavior_normalizer, "the other envs with a measured random score whose behavioral agent beats "
                                   "random play by 2 standard errors, behavior-normalized, (score − random) / "
                                   "(behavioral − random)", "non-Atari envs", "behavior-normalized score"),
}


def aggregate_games(found: Found, normalizer: Normalizer, last: int = 1) -> dict[str, Normalize]:
    """env → its normalizing function, for the envs that ``normalizer(env, kinds, last)`` admits (None
    leaves an env out) and that have BCQ runs and runs of another arm. Every aggregate of a group (IQM,
    P(improvement), paired differences) uses these envs, so they all rest on the same exclusion rule."""
    return {env: fn for env in sorted(found) if found[env].get(BASELINE) and any(found[env].get(a) for a in ARMS)
            and (fn := normalizer(env, found[env], last)) is not None}


def score_matrix(found: Found, games: dict, algo: str, last: int, normalize: bool = True) -> np.ndarray | None:
    """(seeds × games) final scores of ``algo`` (normalized by each game's function), the first n seeds of
    each game with n the fewest any game has; None where a game lacks ``algo``."""
    if not games or not all(found[env].get(algo) for env in games):
        return None
    seeds = min(len(found[env][algo]) for env in games)
    return np.stack([(fn if normalize else np.asarray)(final(found[env][algo], last)[:seeds])
                     for env, fn in games.items()], axis=1)


def score_matrices(found: Found, games: dict, last: int, normalize: bool = True) -> dict[str, np.ndarray]:
    """arm → its `score_matrix`, for the arms that every game has."""
    return {algo: m for algo in CURVES if (m := score_matrix(found, games, algo, last, normalize)) is not None}


def normalized_iqm(found: Found, normalizer: Normalizer, seed: int = 0,
                   last: int = 1) -> dict[str, tuple[float, float, float, int, int]]:
    """IQM over games × seeds of normalized final scores with rliable's stratified bootstrap 95% CI, for
    every arm that all the games have. Arm → (IQM, low, high, games, seeds)."""
    games = aggregate_games(found, normalizer, last)
    return {algo: (*interval_estimate(matrix, iqm, seed), len(games), matrix.shape[0])
            for algo, matrix in score_matrices(found, games, last).items()}


def contrasts(present) -> list[tuple[str, str]]:
    """The pairs the report compares: `CONTRASTS` then every arm against BCQ, where both ran."""
    pairs = [*CONTRASTS, *((algo, BASELINE) for algo in ARMS)]
    return [(x, y) for x, y in dict.fromkeys(pairs) if x in present and y in present]


def improvement_probabilities(found: Found, normalizer: Normalizer, seed: int = 0, last: int = 1) -> dict:
    """(X, Y) → (P(X > Y) averaged over the group's games, CI low, CI high, games), rliable's estimator and
    stratified bootstrap over the same games and seeds as the group's IQM."""
    games = aggregate_games(found, normalizer, last)
    matrices = score_matrices(found, games, last, normalize=False)
    return {(x, y): (*interval_estimate((matrices[x], matrices[y]), probability_of_improvement, seed), len(games))
            for x, y in contrasts(matrices)}


def paired_differences(found: Found, normalizer: Normalizer, last: int = 1) -> tuple[dict, dict]:
    """(X, Y) → the mean over (game, seed) pairs of X − Y on the same buffer, normalized by the game's
    function (behavior-normalized: the random score cancels), with its 95% t-interval and the number of pairs;
    and (X, Y) → env → the same over that env's pairs, in raw final scores."""
    games = aggregate_games(found, normalizer, last)
    present = {algo for algo in CURVES if any(found[env].get(algo) for env in games)}
    pooled, by_env = {}, {}
    for x, y in contrasts(present):
        finals = {}  # env → [(X's final score, Y's)] of the seeds both ran: the same seed, the same buffer
        for env in games:
            runs_x, runs_y = found[env].get(x, {}), found[env].get(y, {})
            if seeds := sorted(set(runs_x) & set(runs_y)):
                finals[env] = [(final_score(runs_x[s], last), final_score(runs_y[s], last)) for s in seeds]
        if finals:
            pooled[(x, y)] = paired_difference([games[env](a) - games[env](b)
                                                for env, pairs in finals.items() for a, b in pairs])
            by_env[(x, y)] = {env: paired_difference([a - b for a, b in pairs]) for env, pairs in finals.items()}
    return pooled, by_env


def performance_profiles(found: Found, normalizer: Normalizer, seed: int = 0, last: int = 1, points: int = 41):
    """(τ values, arm → (fraction of runs above each τ, CI low, CI high)) over the group's normalized
    scores (the IQM's matrices), by rliable's stratified bootstrap."""
    matrices = score_matrices(found, aggregate_games(found, normalizer, last), last)
    if not matrices:
        return np.array([]), {}
    every = np.concatenate([m.ravel() for m in matrices.values()])
    taus = np.linspace(min(every.min(), 0.0), every.max(), points)
    return taus, {algo: interval_estimates(m, lambda x: np.array([np.mean(x > t) for t in taus]), seed, reps=500)
                  for algo, m in matrices.items()}  # bands of a figure: 500 bootstrap samples


def aggregate_groups(found: Found, seed: int = 0, last: int = 1) -> dict[str, dict]:
    """Group name → its IQMs (``iqm``), probabilities of improvement (``poi``), paired differences pooled
    (``paired``) and by env (``paired_by_env``) and performance profiles (``profiles``), for the groups that
    have an IQM or a P(X > Y)."""
    groups = {}
    for name, (normalizer, *_) in AGGREGATES.items():
        pooled, by_env = paired_differences(found, normalizer, last)
        group = {"iqm": normalized_iqm(found, normalizer, seed, last),
                 "poi": improvement_probabilities(found, normalizer, seed, last),
                 "paired": pooled, "paired_by_env": by_env}
        if group["iqm"] or group["poi"]:
            group["profiles"] = performance_profiles(found, normalizer, seed, last)
            groups[name] = group
    return groups


def aggregate_text(title: str, group: dict) -> str:
    """The lines of one group of envs: IQMs, paired differences and probabilities of improvement."""
    iqms, pairs, poi = group["iqm"], group["paired"], group["poi"]
    label = {prefix: a.label for prefix, a in BY_PREFIX.items()}
    games = next(iter(iqms.values()))[3] if iqms else next(iter(poi.values()))[3]
    lines = [f"Over {games} env{'s' if games != 1 else ''}: {title} (the same envs for every line below)."]
    if iqms:
        lines += ["", "IQM of final scores over envs × seeds (rliable, 95% stratified bootstrap CI):"]
        lines += [f"- {label[a]}: {v:.3f} [{lo:.3f}, {hi:.3f}] (the first {n} seeds of each env)"
                  for a, (v, lo, hi, _, n) in iqms.items()]
    if pairs:
        lines += ["", "Paired difference X − Y of normalized final scores, runs on the same buffer (mean, 95% t-interval, pairs):"]
        lines += [f"- {label[x]} − {label[y]}: {m:+.3f} " + (f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "[—]")
                  + f" ({n} pairs)" for (x, y), (m, lo, hi, n) in pairs.items()]
        by_env = group.get("paired_by_env", {})
        if by_env and max(len(envs) for envs in by_env.values()) > 1:
            lines += ["", "The same by env, in raw final scores (mean, 95% t-interval over that env's pairs):"]
            interval = lambda m, lo, hi, n: f"{m:+.2f} " + (f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "[—]")
            lines += [f"- {label[x]} − {label[y]}: " + "; ".join(f"{env} {interval(*v)}" for env, v in envs.items())
                      for (x, y), envs in by_env.items()]
    if poi:
        lines += ["", "Probability of improvement P(X > Y), averaged over envs (rliable, 95% stratified bootstrap CI):"]
        lines += [f"- P({label[x]} > {label[y]}) = {p:.2f} [{lo:.2f}, {hi:.2f}]" for (x, y), (p, lo, hi, _) in poi.items()]
    return "\n".join(lines)
