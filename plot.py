"""Learning curves, a summary figure and a comparison table from a results directory.

    python plot.py                       # reads ./results, writes ./plots
    python plot.py --results_dir runs1/results --out_dir figs
    python plot.py --last 3              # a run's final score: the mean of its last 3 evaluations

Every offline algorithm of `common/learning/algorithms.py` that has results is drawn and tabulated (BCQ,
BCQ+aug, SQV and the two-view arms). Per env: `{env}.png` with their learning curves (mean over
seeds, shaded 95% percentile bootstrap band over seeds) and the behavioral and buffer-policy returns
as horizontal lines. Across envs: `curves.png` with every env's curves in one figure (when there are
several); `summary.png` with each arm's change against BCQ per env, (X − BCQ) / |BCQ| of the
seed-mean final returns, and the human-normalized final scores of Atari games. The table
(`table.md`, also printed) gives per env mean ± sample std over seeds (n) of the behavioral, buffer
and every arm's returns, and each arm's change against BCQ. Under it, per group of envs (Atari games,
human-normalized; the other envs with a random score in `common/reporting/scores.py` whose behavioral agent
beats random play by more than 2 standard errors, behavior-normalized), all over the same envs: the
IQM over envs × seeds with rliable's stratified-bootstrap 95% CIs, the paired differences X − Y on
the same buffers with t-intervals, and rliable's probability of improvement; `aggregate.png` shows
the IQMs and rliable's performance profiles. Where h-DQN runs exist (`hDQN_*_episodes.npy`):
`{env}_episodes.png` with the extrinsic reward per training episode of h-DQN and of the flat DQN
(`behavioral_*_episodes.npy`), moving averages over 1000.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
from collections import defaultdict

import numpy as np

from common.learning.algorithms import CONTRASTS, OFFLINE
from common.io import atomic_open
from common.reporting.scores import (beats, behavior_normalized, bootstrap_mean_ci, human_normalized, interval_estimate,
                           interval_estimates, iqm,
                           paired_difference, probability_of_improvement, random_score, relative_improvement)

CURVES = tuple(a.prefix for a in OFFLINE)  # drawn and tabulated where present, in this order
LABELS = {a.prefix: a.label for a in OFFLINE}
COLORS = {a.prefix: a.color for a in OFFLINE}
PATTERN = re.compile(rf"^({'|'.join(sorted(CURVES, key=len, reverse=True))}|behavioral|buffer_returns)_(.+)_(-?\d+)\.npy$")


def collect(results_dir: str) -> dict[str, dict[str, dict[int, np.ndarray]]]:
    """env → kind (BCQ, SQV, behavioral, buffer_returns) → seed → array of returns. Every results
    file the report reads (these and the ``*_episodes.npy`` of h-DQN runs) must be a 1-D array of
    numbers, non-empty where it holds evaluations; anything else is a one-line `UserError`."""
    from common.errors import UserError

    found: dict = defaultdict(lambda: defaultdict(dict))
    for name in sorted(os.listdir(results_dir)):
        match, episodes = PATTERN.match(name), EPISODES.match(name)
        if not (match or episodes):
            continue
        path = os.path.join(results_dir, name)
        what = ("a 1-D array of episode returns" if episodes or match[1] == "buffer_returns"
                else "a non-empty 1-D array of evaluation returns")
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise UserError(f"results file {path} is not a readable .npy ({str(err).splitlines()[0][:80]}); expected "
                            f"{what} as python main.py writes it: delete or regenerate the file") from None
        if not isinstance(values, np.ndarray):  # an .npz archive
            raise UserError(f"results file {path} is an .npz archive; expected {what} as python main.py writes "
                            "it: delete or regenerate the file")
        if values.ndim != 1 or values.dtype.kind not in "iuf" or (not values.size and what.startswith("a non")):
            raise UserError(f"results file {path} holds {values.dtype} values of shape {values.shape}; expected {what} "
                            "as python main.py writes it: delete or regenerate the file")
        if match:
            found[match[2]][match[1]][int(match[3])] = values
    return found


def eval_steps(results_dir: str, algo: str, env: str, seed: int, n: int) -> tuple[np.ndarray, str]:
    """Iterations of each evaluation from the run's eval CSV, or 1, 2, ... when it is absent."""
    path = os.path.join(results_dir, f"{algo}_{env}_{seed}_eval.csv")
    if os.path.exists(path):
        with open(path) as f:
            steps = [int(row["step"]) for row in csv.DictReader(f)]
        if len(steps) >= n:
            return np.array(steps[:n]), "training iterations"
    return np.arange(1, n + 1), "evaluation"


def final_score(curve: np.ndarray, last: int = 1) -> float:
    """A run's final score: the mean of its last ``last`` evaluations (of all, where it has fewer)."""
    if last < 1:
        raise ValueError(f"a final score averages at least the last evaluation, not the last {last}")
    return float(curve[-last:].mean())


def final(runs: dict[int, np.ndarray], last: int = 1) -> np.ndarray:
    """Each seed's final score, in seed order."""
    return np.array([final_score(runs[s], last) for s in sorted(runs)])


def buffer_means(runs: dict[int, np.ndarray] | None) -> np.ndarray | None:
    """Per-seed mean episode return of the buffer; seeds whose buffer finished no episode are skipped."""
    means = [runs[s].mean() for s in sorted(runs or {}) if len(runs[s])]
    return np.array(means) if means else None


def mean_std(values: np.ndarray) -> tuple[float, float, int]:
    """(mean, sample standard deviation (ddof=1; nan for one value), n)."""
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan"), len(values)


def summarize(found, last: int = 1) -> list[dict]:
    """One row per env: (mean, std, n) over seeds of each figure, and each arm's change against BCQ."""
    rows = []
    for env, kinds in sorted(found.items()):
        row = {"env": env}
        per_kind = {"behavioral": final(kinds["behavioral"], last) if kinds.get("behavioral") else None,
                    "buffer": buffer_means(kinds.get("buffer_returns")),
                    **{algo: final(kinds[algo], last) if kinds.get(algo) else None for algo in CURVES}}
        for key, values in per_kind.items():
            row[key] = None if values is None else mean_std(values)
        row["vs_BCQ"] = {algo: relative_improvement(row[algo][0], row["BCQ"][0])
                         for algo in CURVES[1:] if row[algo] and row["BCQ"]}
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    def cell(v):
        if v is None:
            return "—"
        return f"{v[0]:.1f} ({v[2]})" if v[2] < 2 else f"{v[0]:.1f} ± {v[1]:.1f} ({v[2]})"

    def percent(v):  # undefined when BCQ's mean is 0
        return "—" if v is None or not np.isfinite(v) else f"{100 * v:+.1f}%"
    arms = [algo for algo in CURVES if any(r[algo] for r in rows)]  # columns only for arms that ran
    versus = [algo for algo in arms[1:] if any(algo in r["vs_BCQ"] for r in rows)]
    header = ["env", "behavioral", "buffer", *(LABELS[a] for a in arms), *(f"{LABELS[a]} vs BCQ" for a in versus)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["env"], cell(r["behavioral"]), cell(r["buffer"]), *(cell(r[a]) for a in arms),
                 *(percent(r["vs_BCQ"].get(a)) for a in versus)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def aggregate_games(found, normalizer, last: int = 1) -> dict:
    """env → its normalizing function, for the envs that ``normalizer(env, kinds, last)`` admits (None
    leaves an env out) and that have BCQ runs and runs of another arm. Every aggregate of a group (IQM,
    P(improvement), paired differences) uses these envs, so they all rest on the same exclusion rule."""
    return {env: fn for env in sorted(found) if found[env].get("BCQ") and any(found[env].get(a) for a in CURVES[1:])
            and (fn := normalizer(env, found[env], last)) is not None}


def score_matrix(found, games: dict, algo: str, last: int, normalize: bool = True) -> np.ndarray | None:
    """(seeds × games) final scores of ``algo`` (normalized by each game's function), the first n seeds of
    each game with n the fewest any game has; None where a game lacks ``algo``."""
    if not games or not all(found[env].get(algo) for env in games):
        return None
    seeds = min(len(found[env][algo]) for env in games)
    return np.stack([(fn if normalize else np.asarray)(final(found[env][algo], last)[:seeds])
                     for env, fn in games.items()], axis=1)


def normalized_iqm(found, normalizer, seed: int = 0, last: int = 1) -> dict[str, tuple[float, float, float, int, int]]:
    """IQM over games × seeds of normalized final scores with rliable's stratified bootstrap 95% CI, for
    every arm that all the games have. Arm → (IQM, low, high, games, seeds)."""
    games = aggregate_games(found, normalizer, last)
    out = {}
    for algo in CURVES:
        matrix = score_matrix(found, games, algo, last)
        if matrix is not None:
            out[algo] = (*interval_estimate(matrix, iqm, seed), len(games), matrix.shape[0])
    return out


def contrasts(present) -> list[tuple[str, str]]:
    """The pairs the report compares: `CONTRASTS` then every arm against BCQ, where both ran."""
    pairs = [*CONTRASTS, *((algo, "BCQ") for algo in CURVES[1:])]
    return [(x, y) for x, y in dict.fromkeys(pairs) if x in present and y in present]


def improvement_probabilities(found, normalizer, seed: int = 0, last: int = 1) -> dict[tuple[str, str], tuple]:
    """(X, Y) → (P(X > Y) averaged over the group's games, CI low, CI high, games), rliable's estimator and
    stratified bootstrap over the same games and seeds as the group's IQM."""
    games = aggregate_games(found, normalizer, last)
    matrices = {algo: m for algo in CURVES if (m := score_matrix(found, games, algo, last, normalize=False)) is not None}
    return {(x, y): (*interval_estimate((matrices[x], matrices[y]), probability_of_improvement, seed), len(games))
            for x, y in contrasts(matrices)}


def paired_differences(found, normalizer, last: int = 1) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """(X, Y) → the mean over (game, seed) pairs of X − Y on the same buffer, normalized by the game's
    function (behavior-normalized: the random score cancels), with its 95% t-interval and the number of pairs."""
    games = aggregate_games(found, normalizer, last)
    present = {algo for algo in CURVES if any(found[env].get(algo) for env in games)}
    out = {}
    for x, y in contrasts(present):
        d = []
        for env, fn in games.items():
            runs_x, runs_y = found[env].get(x, {}), found[env].get(y, {})
            for s in sorted(set(runs_x) & set(runs_y)):  # the same seed: the same buffer
                d.append(fn(final_score(runs_x[s], last)) - fn(final_score(runs_y[s], last)))
        if d:
            out[(x, y)] = paired_difference(d)
    return out


def atari_normalizer(env, kinds, last):
    return None if human_normalized(env, 0.0) is None else (lambda scores: human_normalized(env, scores))


def behavior_normalizer(env, kinds, last):
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


def aggregate_text(title: str, group: dict) -> str:
    """The lines of one group of envs: IQMs, paired differences and probabilities of improvement."""
    iqms, pairs, poi = group["iqm"], group["paired"], group["poi"]
    games = next(iter(iqms.values()))[3] if iqms else next(iter(poi.values()))[3]
    lines = [f"Over {games} env{'s' if games != 1 else ''}: {title} (the same envs for every line below)."]
    if iqms:
        lines += ["", "IQM of final scores over envs × seeds (rliable, 95% stratified bootstrap CI):"]
        lines += [f"- {LABELS[a]}: {v:.3f} [{lo:.3f}, {hi:.3f}] (the first {n} seeds of each env)"
                  for a, (v, lo, hi, _, n) in iqms.items()]
    if pairs:
        lines += ["", "Paired difference X − Y of normalized final scores, runs on the same buffer (mean, 95% t-interval, pairs):"]
        lines += [f"- {LABELS[x]} − {LABELS[y]}: {m:+.3f} " + (f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "[—]")
                  + f" ({n} pairs)" for (x, y), (m, lo, hi, n) in pairs.items()]
    if poi:
        lines += ["", "Probability of improvement P(X > Y), averaged over envs (rliable, 95% stratified bootstrap CI):"]
        lines += [f"- P({LABELS[x]} > {LABELS[y]}) = {p:.2f} [{lo:.2f}, {hi:.2f}]" for (x, y), (p, lo, hi, _) in poi.items()]
    return "\n".join(lines)


def save_figure(fig, path: str) -> None:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")


def draw_env(ax, env: str, kinds, results_dir: str, rng, title: str, last: int = 1) -> None:
    """The learning curves of one env (mean over seeds, 95% bootstrap band) and its reference lines."""
    axes = {algo: eval_steps(results_dir, algo, env, min(kinds[algo]), min(len(r) for r in kinds[algo].values()))
            for algo in CURVES if kinds.get(algo)}
    use_iterations = all(label == "training iterations" for _, label in axes.values())
    xlabel = "training iterations" if use_iterations else "evaluation"
    for algo in CURVES:
        runs, color = kinds.get(algo), COLORS[algo]
        if not runs:
            continue
        seeds = sorted(runs)
        length = min(len(runs[s]) for s in seeds)
        curves = np.stack([runs[s][:length] for s in seeds])
        steps = axes[algo][0] if use_iterations else np.arange(1, length + 1)  # one x unit for every curve
        low, high = bootstrap_mean_ci(curves, rng)
        ax.plot(steps, curves.mean(0), color=color, label=f"{LABELS[algo]} (n={len(seeds)})")
        ax.fill_between(steps, low, high, color=color, alpha=0.25)
    for key, label, style in (("behavioral", "behavioral", "--"), ("buffer_returns", "buffer policy", ":")):
        values = final(kinds[key], last) if key == "behavioral" and kinds.get(key) else (
            buffer_means(kinds.get(key)) if key == "buffer_returns" else None)
        if values is not None:
            value = float(np.mean(values))
            ax.axhline(value, color="gray", linestyle=style, label=f"{label} ({value:.1f})")
    ax.set(title=title, xlabel=xlabel, ylabel="mean evaluation return")
    if use_iterations:  # 20k, not 20000: readable ticks in small panels
        from matplotlib.ticker import FuncFormatter
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"))
    ax.legend(fontsize=7)


def plot_env(env: str, kinds, results_dir: str, path: str, rng, last: int = 1) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    draw_env(ax, env, kinds, results_dir, rng, f"{env}  (bands: 95% bootstrap CI over seeds)", last)
    save_figure(fig, path)
    plt.close(fig)


def plot_curves(found, results_dir: str, path: str, rng, last: int = 1, columns: int = 4) -> None:
    """Every env's learning curves in one figure (for a study over many envs)."""
    import matplotlib.pyplot as plt

    envs = [env for env in sorted(found) if any(found[env].get(algo) for algo in CURVES)]
    rows = -(-len(envs) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.4 * rows), squeeze=False)
    for ax, env in zip(axes.flat, envs):
        draw_env(ax, env, found[env], results_dir, rng, env, last)
    for ax in list(axes.flat)[len(envs):]:
        ax.axis("off")
    fig.suptitle("mean over seeds, bands: 95% bootstrap CI over seeds")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_summary(rows: list[dict], path: str) -> list[str]:
    """Each arm's change of final return against BCQ per env (an env where any arm has one is shown)
    and, for Atari games, each arm's human-normalized score. Returns the envs of the first panel."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if any(np.isfinite(v) for v in r["vs_BCQ"].values())]
    arms = [a for a in CURVES[1:] if any(np.isfinite(r["vs_BCQ"].get(a, np.nan)) for r in rows)]
    atari = [r for r in rows if human_normalized(r["env"], 0.0) is not None]
    fig, axes = plt.subplots(1, 2 if atari else 1, figsize=(11 if atari else 6, 4), squeeze=False)
    for panel, (ax, envs) in enumerate(zip(axes[0], (rows, atari))):
        drawn = arms if panel == 0 else [a for a in CURVES if any(r[a] for r in atari)]
        width = 0.8 / max(len(drawn), 1)
        for k, algo in enumerate(drawn):
            values = [100 * r["vs_BCQ"].get(algo, np.nan) if panel == 0 else
                      float(human_normalized(r["env"], r[algo][0])) if r[algo] else np.nan for r in envs]
            ax.bar(np.arange(len(envs)) + k * width, values, width, color=COLORS[algo], label=LABELS[algo])
        ax.set_xticks(np.arange(len(envs)) + width * (len(drawn) - 1) / 2, [r["env"] for r in envs],
                      rotation=45, ha="right")
        ax.axhline(0, color="black", linewidth=0.8)
        if drawn:
            ax.legend(fontsize=7)
    axes[0, 0].set(title="change of final return vs BCQ: (X − BCQ) / |BCQ|", ylabel="%")
    if atari:
        axes[0, 1].set(title="human-normalized final score", ylabel="(score − random) / (human − random)")
    save_figure(fig, path)
    plt.close(fig)
    return [r["env"] for r in rows]


def plot_aggregate(groups: dict, path: str) -> None:
    """Per group of envs (Atari, others): each arm's IQM with its 95% CI, and rliable's performance
    profile (the fraction of runs scoring above τ, with 95% CI bands)."""
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    fig, axes = plt.subplots(2, len(groups), figsize=(6 * len(groups), 7.5), squeeze=False)
    for column, (name, group) in enumerate(groups.items()):
        _, _, panel, score = AGGREGATES[name]
        values, ax = group["iqm"], axes[0, column]
        algos = list(values)
        iqms = np.array([values[a][0] for a in algos])
        errors = np.array([iqms - [values[a][1] for a in algos], [values[a][2] for a in algos] - iqms])
        ax.barh(range(len(algos)), iqms, xerr=np.maximum(errors, 0.0), color=[COLORS[a] for a in algos], capsize=4)
        ax.set_yticks(range(len(algos)), [f"{LABELS[a]} (n={values[a][4]})" for a in algos])
        ax.set(title=f"{panel}: IQM over {next(iter(values.values()))[3]} games",
               xlabel=f"{score} (95% CI); n = seeds per game")
        taus, profiles = group["profiles"]
        plot_utils.plot_performance_profiles({LABELS[a]: p[0] for a, p in profiles.items()}, taus,
                                             {LABELS[a]: np.stack(p[1:]) for a, p in profiles.items()},
                                             ax=axes[1, column], colors={LABELS[a]: COLORS[a] for a in profiles},
                                             xlabel=f"{score} (τ)", ylabel="fraction of runs with score > τ")
        axes[1, column].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def performance_profiles(found, normalizer, seed: int = 0, last: int = 1, points: int = 41):
    """(τ values, arm → (fraction of runs above each τ, CI low, CI high)) over the group's normalized
    scores (the IQM's matrices), by rliable's stratified bootstrap."""
    games = aggregate_games(found, normalizer, last)
    matrices = {algo: m for algo in CURVES if (m := score_matrix(found, games, algo, last)) is not None}
    if not matrices:
        return np.array([]), {}
    every = np.concatenate([m.ravel() for m in matrices.values()])
    taus = np.linspace(min(every.min(), 0.0), every.max(), points)
    return taus, {algo: interval_estimates(m, lambda x: np.array([np.mean(x > t) for t in taus]), seed, reps=500)
                  for algo, m in matrices.items()}  # bands of a figure: 500 bootstrap samples


EPISODES = re.compile(r"^(hDQN|behavioral)_(.+)_(-?\d+)_episodes\.npy$")
EPISODE_LABELS = {"hDQN": "h-DQN", "behavioral": "flat DQN"}


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_episodes(results_dir: str, out_dir: str, rng, window: int = 1000) -> list[str]:
    """For each env with h-DQN runs: the extrinsic return per training episode of h-DQN and of the
    flat DQN (behavioral stage), as a moving average over ``window`` episodes, mean over seeds
    with a 95% bootstrap band. Writes ``{env}_episodes.png``."""
    import matplotlib.pyplot as plt

    runs: dict = defaultdict(lambda: defaultdict(dict))
    for name in sorted(os.listdir(results_dir)):
        match = EPISODES.match(name)
        if match:
            runs[match[2]][match[1]][int(match[3])] = np.load(os.path.join(results_dir, name))
    paths = []
    for env, kinds in sorted(runs.items()):
        if "hDQN" not in kinds:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for kind, color in (("hDQN", "tab:green"), ("behavioral", "tab:gray")):
            if kind not in kinds:
                continue
            seeds = sorted(kinds[kind])
            length = min(len(kinds[kind][s]) for s in seeds)
            curves = np.stack([moving_average(kinds[kind][s][:length], window) for s in seeds])
            low, high = bootstrap_mean_ci(curves, rng)
            episodes = np.arange(1, length + 1)
            ax.plot(episodes, curves.mean(0), color=color, label=f"{EPISODE_LABELS[kind]} (n={len(seeds)})")
            ax.fill_between(episodes, low, high, color=color, alpha=0.25)
        ax.set(title=env, xlabel="training episode", ylabel=f"extrinsic reward (mean of last {window} episodes)")
        ax.legend(fontsize=8)
        paths.append(os.path.join(out_dir, f"{env}_episodes.png"))
        save_figure(fig, paths[-1])
        plt.close(fig)
    return paths


def make_report(results_dir: str, out_dir: str, seed: int = 0, last: int = 1) -> dict[str, object]:
    """Draw every figure and write the table; returns the paths and the summary rows. A run's final
    score is the mean of its last ``last`` evaluations."""
    import matplotlib
    matplotlib.use("Agg")

    found = collect(results_dir)
    if not found:
        raise FileNotFoundError(f"no results files (BCQ_*, SQV_*, behavioral_*) in {results_dir}")
    rng = np.random.default_rng(seed)  # the figures' bands; each statistic of the table has its own below
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for env, kinds in sorted(found.items()):
        paths.append(os.path.join(out_dir, f"{env}.png"))
        plot_env(env, kinds, results_dir, paths[-1], rng, last)
    paths += plot_episodes(results_dir, out_dir, rng)
    if sum(any(kinds.get(algo) for algo in CURVES) for kinds in found.values()) > 1:
        paths.append(os.path.join(out_dir, "curves.png"))
        plot_curves(found, results_dir, paths[-1], rng, last)
    rows = summarize(found, last)
    paths.append(os.path.join(out_dir, "summary.png"))
    plot_summary(rows, paths[-1])
    table = markdown_table(rows)
    if last > 1:
        table += f"\n\nFinal scores (behavioral and offline) are each run's mean of its last {last} evaluations."
    groups = {}
    for name, (normalizer, title, *_) in AGGREGATES.items():
        group = {"iqm": normalized_iqm(found, normalizer, seed, last),
                 "poi": improvement_probabilities(found, normalizer, seed, last),
                 "paired": paired_differences(found, normalizer, last)}
        if group["iqm"] or group["poi"]:
            group["profiles"] = performance_profiles(found, normalizer, seed, last)
            groups[name] = group
            table += "\n\n" + aggregate_text(title, group)
    if any(group["iqm"] for group in groups.values()):
        paths.append(os.path.join(out_dir, "aggregate.png"))
        plot_aggregate({name: group for name, group in groups.items() if group["iqm"]}, paths[-1])
    table_path = os.path.join(out_dir, "table.md")
    with atomic_open(table_path) as f:
        f.write((table + "\n").encode())
    return {"figures": paths, "table": table_path, "rows": rows, "markdown": table,
            **{key: {name: group[key] for name, group in groups.items()} for key in ("iqm", "poi", "paired")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", type=str, default="results", help="where the results/*.npy files are")
    parser.add_argument("--out_dir", type=str, default="plots", help="where the PNG files and table.md go")
    parser.add_argument("--last", type=int, default=1,
                        help="a run's final score is the mean of its last N evaluations (default 1: the last)")
    args = parser.parse_args()
    if args.last < 1:
        print(f"error: --last must be at least 1, not {args.last}", file=__import__("sys").stderr)
        return 2
    if not os.path.isdir(args.results_dir):
        print(f"error: no results directory {args.results_dir}; run python main.py --pipeline first",
              file=__import__("sys").stderr)
        return 2
    existing = os.path.abspath(args.out_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        print(f"error: --out_dir {args.out_dir}: {existing} is a file, not a folder; choose another --out_dir",
              file=__import__("sys").stderr)
        return 2
    from common.errors import UserError

    try:
        report = make_report(args.results_dir, args.out_dir, last=args.last)
    except (FileNotFoundError, UserError) as err:
        print(f"error: {err}", file=__import__("sys").stderr)
        return 2
    print(report["markdown"])
    print("\n".join(["", *report["figures"], report["table"]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
