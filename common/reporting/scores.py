"""Aggregate statistics for comparing learners across envs and seeds.

Percentile bootstrap confidence intervals of a mean over seeds (the curves' bands); the interquartile
mean (IQM), the probability of improvement and their stratified bootstrap CIs from `rliable`
(Agarwal et al. 2021); paired differences with t-intervals; the relative improvement over BCQ;
human-normalized Atari scores; behavior-normalized scores of the other envs.
"""
from __future__ import annotations

import numpy as np

# Published random-agent scores (Mnih et al. 2015) and human scores (as tabulated by Badia et al. 2020) for
# the 49 games of Mnih et al. 2015; other games are not normalized.
ATARI_RANDOM = {
    "Alien": 227.8, "Amidar": 5.8, "Assault": 222.4, "Asterix": 210.0, "Asteroids": 719.1, "Atlantis": 12850.0,
    "BankHeist": 14.2, "BattleZone": 2360.0, "BeamRider": 363.9, "Bowling": 23.1, "Boxing": 0.1, "Breakout": 1.7,
    "Centipede": 2090.9, "ChopperCommand": 811.0, "CrazyClimber": 10780.5, "DemonAttack": 152.1,
    "DoubleDunk": -18.6, "Enduro": 0.0, "FishingDerby": -91.7, "Freeway": 0.0, "Frostbite": 65.2,
    "Gopher": 257.6, "Gravitar": 173.0, "Hero": 1027.0, "IceHockey": -11.2, "Jamesbond": 29.0, "Kangaroo": 52.0,
    "Krull": 1598.0, "KungFuMaster": 258.5, "MontezumaRevenge": 0.0, "MsPacman": 307.3, "NameThisGame": 2292.3,
    "Pong": -20.7, "PrivateEye": 24.9, "Qbert": 163.9, "Riverraid": 1338.5, "RoadRunner": 11.5, "Robotank": 2.2,
    "Seaquest": 68.4, "SpaceInvaders": 148.0, "StarGunner": 664.0, "Tennis": -23.8, "TimePilot": 3568.0,
    "Tutankham": 11.4, "UpNDown": 533.4, "Venture": 0.0, "VideoPinball": 16256.9, "WizardOfWor": 563.5,
    "Zaxxon": 32.5,
}
ATARI_HUMAN = {
    "Alien": 7127.7, "Amidar": 1719.5, "Assault": 742.0, "Asterix": 8503.3, "Asteroids": 47388.7,
    "Atlantis": 29028.1, "BankHeist": 753.1, "BattleZone": 37187.5, "BeamRider": 16926.5, "Bowling": 160.7,
    "Boxing": 12.1, "Breakout": 30.5, "Centipede": 12017.0, "ChopperCommand": 7387.8, "CrazyClimber": 35829.4,
    "DemonAttack": 1971.0, "DoubleDunk": -16.4, "Enduro": 860.5, "FishingDerby": -38.7, "Freeway": 29.6,
    "Frostbite": 4334.7, "Gopher": 2412.5, "Gravitar": 3351.4, "Hero": 30826.4, "IceHockey": 0.9,
    "Jamesbond": 302.8, "Kangaroo": 3035.0, "Krull": 2665.5, "KungFuMaster": 22736.3, "MontezumaRevenge": 4753.3,
    "MsPacman": 6951.6, "NameThisGame": 8049.0, "Pong": 14.6, "PrivateEye": 69571.3, "Qbert": 13455.0,
    "Riverraid": 17118.0, "RoadRunner": 7845.0, "Robotank": 11.9, "Seaquest": 42054.7, "SpaceInvaders": 1668.7,
    "StarGunner": 10250.0, "Tennis": -8.3, "TimePilot": 5229.2, "Tutankham": 167.6, "UpNDown": 11693.2,
    "Venture": 1187.5, "VideoPinball": 17667.9, "WizardOfWor": 4756.5, "Zaxxon": 9173.3,
}


# Random play: the mean return of uniformly random actions over 100 episodes (env seeds 1000-1099) with
# this project's env settings, and its standard error (std / √100), from
# `common.envs.make.random_policy_returns`; tests/reporting/test_scores.py re-measures two of them.
RANDOM_SCORES = {
    "MinAtar/Asterix-v1": (0.59, 0.110), "MinAtar/Breakout-v1": (0.31, 0.059), "MinAtar/Freeway-v1": (0.38, 0.067),
    "MinAtar/Seaquest-v1": (0.10, 0.033), "MinAtar/SpaceInvaders-v1": (4.46, 0.368), "CartPole-v1": (22.54, 1.065),
    "Acrobot-v1": (-499.2, 0.614),
}


def random_score(env: str) -> tuple[float, float] | None:
    """(mean, standard error) of random play for an env id or its file-name form (``MinAtar_Breakout-v1``)."""
    for name, score in RANDOM_SCORES.items():
        if env in (name, name.replace("/", "_")):
            return score
    return None


def beats(scores, reference: tuple[float, float]) -> bool:
    """Whether the mean of ``scores`` (runs) exceeds ``reference`` = (mean, standard error) by more than
    twice the standard error of the difference. One run has no spread to judge by: False."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) < 2:
        return False
    sem = scores.std(ddof=1) / np.sqrt(len(scores))
    return scores.mean() - reference[0] > 2.0 * np.hypot(sem, reference[1])


def percentile_interval(samples, level: float = 0.95, axis=None):
    """(low, high): the central ``level`` interval of bootstrap samples (the percentile bootstrap)."""
    tail = (1 - level) / 2 * 100
    return np.percentile(samples, tail, axis=axis), np.percentile(samples, 100 - tail, axis=axis)


def behavior_normalized(score, random: float, behavioral: float):
    """(score − random) / (behavioral − random): 0 is random play, 1 the behavioral agent that made the data
    (D4RL's normalization with the data's own expert as the reference)."""
    return (np.asarray(score, dtype=float) - random) / (behavioral - random)


def atari_game(env: str) -> str | None:
    """'Pong' for PongNoFrameskip-v4, AsterixNoFrameskip-v0 or ALE_Pong-v5 (file-name form); else None."""
    name = env.split("_", 1)[1] if env.startswith("ALE_") else env
    name = name.split("-v")[0].replace("NoFrameskip", "").replace("Deterministic", "")
    return name if name in ATARI_HUMAN else None


def human_normalized(env: str, score):
    game = atari_game(env)
    if game is None:
        return None
    return (np.asarray(score, dtype=float) - ATARI_RANDOM[game]) / (ATARI_HUMAN[game] - ATARI_RANDOM[game])


def relative_improvement(score: float, baseline: float) -> float:
    """(X − BCQ) / |BCQ| of the seed-mean final returns (the SQV paper's per-game figure); nan where BCQ's is 0."""
    return (score - baseline) / abs(baseline) if baseline != 0 else float("nan")


def bootstrap_mean_ci(samples: np.ndarray, rng: np.random.Generator, reps: int = 2000, level: float = 0.95):
    """Percentile bootstrap CI of the mean over axis 0 (seeds), for every column at once."""
    samples = np.asarray(samples, dtype=float)
    n = samples.shape[0]
    means = samples[rng.integers(0, n, (reps, n))].mean(axis=1)
    return percentile_interval(means, level, axis=0)


def interval_estimates(scores, statistic, seed: int = 0, reps: int = 2000, level: float = 0.95):
    """``statistic`` (a vector) of (runs × tasks) score matrices and its stratified bootstrap CIs (runs
    resampled within each task), by rliable (Agarwal et al. 2021). ``scores``: one matrix, or a tuple of
    matrices that ``statistic`` takes together (X's and Y's for the probability of improvement).
    Returns (values, lows, highs), arrays."""
    import warnings

    from rliable import library as rly

    data = [np.asarray(m, dtype=float) for m in scores] if isinstance(scores, tuple) else np.asarray(scores, dtype=float)
    # rliable 1.2's stratified bootstrap draws its indices from NumPy's global generator (whatever
    # random_state says), so seed that for repeatable CIs and give the caller's state back afterwards.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # arch deprecates the RandomState rliable hands it
            warnings.simplefilter("ignore", FutureWarning)
            point, interval = rly.get_interval_estimates({"x": data}, lambda *m: np.atleast_1d(statistic(*m)),
                                                         reps=reps, confidence_interval_size=level,
                                                         random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(state)
    return np.atleast_1d(point["x"]).astype(float), interval["x"][0].astype(float), interval["x"][1].astype(float)


def interval_estimate(scores, statistic, seed: int = 0, reps: int = 2000, level: float = 0.95):
    """`interval_estimates` of a scalar statistic: (value, low, high)."""
    value, low, high = interval_estimates(scores, statistic, seed, reps, level)
    return float(value[0]), float(low[0]), float(high[0])


def iqm(scores) -> float:
    """Interquartile mean over all runs and tasks: rliable's ``aggregate_iqm`` (scipy's trim_mean(0.25))."""
    from rliable import metrics

    return float(metrics.aggregate_iqm(np.asarray(scores, dtype=float)))


def probability_of_improvement(scores_x, scores_y) -> float:
    """P(X > Y) per task (Mann-Whitney over pairs of runs, ties 1/2) averaged over tasks: rliable's."""
    from rliable import metrics

    return float(metrics.probability_of_improvement(np.asarray(scores_x, dtype=float), np.asarray(scores_y, dtype=float)))


def paired_difference(differences, level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean of paired differences (X − Y on the same buffer) and its t-interval, (mean, low, high, n):
    the pairs are independent runs, and with a handful of them the t-interval is wider, and more
    honest, than a bootstrap's. One pair has no spread: its interval is (nan, nan)."""
    from scipy import stats

    d = np.asarray(differences, dtype=float).ravel()
    n = len(d)
    if n < 2:
        return float(d.mean()) if n else float("nan"), float("nan"), float("nan"), n
    half = stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / np.sqrt(n)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half), n
