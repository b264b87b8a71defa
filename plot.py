"""Learning curves, a summary figure and a comparison table from a results directory.

    python plot.py                       # reads ./results, writes ./plots
    python plot.py --results_dir runs1/results --out_dir figs
    python plot.py --last 3              # a run's final score: the mean of its last 3 evaluations

Per env: `{env}.png` with BCQ, BCQ+aug (`--aug`, where run) and SQV learning curves (mean over seeds, shaded 95% percentile
bootstrap band over seeds) and the behavioral and buffer-policy returns as horizontal lines.
Across envs: `curves.png` with every env's curves in one figure (when there are several), `summary.png` with SQV's relative improvement over BCQ per env, (SQV − BCQ) / |BCQ|
of the seed-mean final returns, and the human-normalized final scores of Atari games;
`aggregate.png` and lines under the table with the IQM over games × seeds (stratified bootstrap
95% CIs) of human-normalized Atari scores and of behavior-normalized scores of the other envs,
(score − random) / (behavioral − random), for the envs with a random score in `common/scores.py`
whose behavioral agent beats random play by more than 2 standard errors; and the probability of
improvement P(X > Y) of SQV over BCQ, BCQ+aug over BCQ and SQV over BCQ+aug, averaged over envs. Where h-DQN
runs exist (`hDQN_*_episodes.npy`): `{env}_episodes.png` with the extrinsic reward per training
episode of h-DQN and of the flat DQN (`behavioral_*_episodes.npy`), moving averages over 1000. The table
(`table.md`, also printed) gives, per env, mean ± std over seeds (n) of the behavioral, buffer, BCQ,
BCQ+aug (when any env has it) and SQV returns, SQV's improvement over BCQ and BCQ+aug's.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
from collections import defaultdict

import numpy as np

from common.io import atomic_open
from common.scores import (beats, behavior_normalized, bootstrap_mean_ci, human_normalized, iqm, random_score,
                           relative_improvement, stratified_bootstrap_ci, stratified_bootstrap_poi)

ALGOS = ("BCQ", "SQV")                 # compared by the improvement; a game in an IQM has both
CURVES = ("BCQ", "BCQaug", "SQV")      # drawn and tabulated where present (BCQaug: --aug)
LABELS = {"BCQ": "BCQ", "BCQaug": "BCQ+aug", "SQV": "SQV"}
COLORS = {"BCQ": "tab:blue", "BCQaug": "tab:green", "SQV": "tab:orange"}
PATTERN = re.compile(r"^(BCQaug|BCQ|SQV|behavioral|buffer_returns)_(.+)_(-?\d+)\.npy$")


def collect(results_dir: str) -> dict[str, dict[str, dict[int, np.ndarray]]]:
    """env → kind (BCQ, SQV, behavioral, buffer_returns) → seed → array of returns."""
    found: dict = defaultdict(lambda: defaultdict(dict))
    for name in sorted(os.listdir(results_dir)):
        match = PATTERN.match(name)
        if match:
            kind, env, seed = match[1], match[2], int(match[3])
            found[env][kind][seed] = np.atleast_1d(np.load(os.path.join(results_dir, name)))
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


def final(runs: dict[int, np.ndarray], last: int = 1) -> np.ndarray:
    """Each seed's final score: the mean of its last ``last`` evaluations (of all, where it has fewer)."""
    if last < 1:
        raise ValueError(f"a final score averages at least the last evaluation, not the last {last}")
    return np.array([runs[s][-last:].mean() for s in sorted(runs)])


def buffer_means(runs: dict[int, np.ndarray] | None) -> np.ndarray | None:
    """Per-seed mean episode return of the buffer; seeds whose buffer finished no episode are skipped."""
    means = [runs[s].mean() for s in sorted(runs or {}) if len(runs[s])]
    return np.array(means) if means else None


def summarize(found, last: int = 1) -> list[dict]:
    """One row per env: mean, std and n over seeds of each figure, and SQV's improvement."""
    rows = []
    for env, kinds in sorted(found.items()):
        row = {"env": env}
        per_kind = {"behavioral": final(kinds["behavioral"], last) if kinds.get("behavioral") else None,
                    "buffer": buffer_means(kinds.get("buffer_returns")),
                    **{algo: final(kinds[algo], last) if kinds.get(algo) else None for algo in CURVES}}
        for key, values in per_kind.items():
            row[key] = None if values is None else (float(values.mean()), float(values.std()), len(values))
        row["improvement"] = (relative_improvement(row["SQV"][0], row["BCQ"][0])
                              if row["SQV"] and row["BCQ"] else None)
        row["aug_improvement"] = (relative_improvement(row["BCQaug"][0], row["BCQ"][0])
                                  if row["BCQaug"] and row["BCQ"] else None)
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    def cell(v):
        return "—" if v is None else f"{v[0]:.1f} ± {v[1]:.1f} ({v[2]})"

    def percent(v):  # undefined when BCQ's mean is 0
        return "—" if v is None or not np.isfinite(v) else f"{100 * v:+.1f}%"
    aug = any(r["BCQaug"] for r in rows)  # the --aug columns only when some env has --aug runs
    lines = [f"| env | behavioral | buffer | BCQ |{' BCQ+aug |' if aug else ''} SQV | SQV vs BCQ |"
             + (" BCQ+aug vs BCQ |" if aug else ""), "|---|---|---|---|---|---|" + ("---|---|" if aug else "")]
    for r in rows:
        lines.append(f"| {r['env']} | {cell(r['behavioral'])} | {cell(r['buffer'])} | {cell(r['BCQ'])} | "
                     + (f"{cell(r['BCQaug'])} | " if aug else "") + f"{cell(r['SQV'])} | {percent(r['improvement'])} |"
                     + (f" {percent(r['aug_improvement'])} |" if aug else ""))
    return "\n".join(lines)


def normalized_iqm(found, normalizer, rng, last: int = 1) -> dict[str, tuple[float, float, float, int, int]]:
    """IQM over games × seeds of normalized final scores, with stratified bootstrap 95% CIs, for every
    algorithm of `CURVES` that all the games have. The games: those with BCQ and SQV runs for which
    ``normalizer(env, kinds, last)`` returns a function of raw scores (None leaves a game out).
    Algorithm → (IQM, low, high, games, seeds)."""
    games = {env: fn for env in sorted(found) if (fn := normalizer(env, found[env], last)) is not None
             and all(found[env].get(algo) for algo in ALGOS)}  # the same games for every algorithm
    out = {}
    for algo in CURVES:
        if not games or not all(found[env].get(algo) for env in games):
            continue
        seeds = min(len(found[env][algo]) for env in games)  # a rectangular runs × games matrix
        matrix = np.stack([fn(final(found[env][algo], last)[:seeds]) for env, fn in games.items()], axis=1)
        low, high = stratified_bootstrap_ci(matrix, iqm, rng)
        out[algo] = (iqm(matrix), low, high, len(games), seeds)
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


COMPARISONS = (("SQV", "BCQ"), ("BCQaug", "BCQ"), ("SQV", "BCQaug"))


def improvement_probabilities(found, rng, last: int = 1) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """(X, Y) → (P(X > Y) averaged over the envs that have both, CI low, CI high, envs), from the runs'
    final scores; no normalization needed."""
    out = {}
    for x, y in COMPARISONS:
        pairs = [(final(kinds[x], last), final(kinds[y], last)) for _, kinds in sorted(found.items())
                 if kinds.get(x) and kinds.get(y)]
        if pairs:
            out[(x, y)] = (*stratified_bootstrap_poi(pairs, rng), len(pairs))
    return out


# name → (normalizer, the table's title, the figure's panel name and score axis)
AGGREGATES = {
    "Atari": (atari_normalizer, "IQM of human-normalized final scores over Atari games × seeds",
              "Atari", "human-normalized score"),
    "other": (behavior_normalizer, "IQM of behavior-normalized final scores, (score − random) / "
                                   "(behavioral − random), over the other envs × seeds",
              "non-Atari envs", "behavior-normalized score"),
}


def aggregate_text(title: str, values: dict) -> str:
    lines = [f"{title} (95% stratified bootstrap CI):"]
    lines += [f"- {LABELS[algo]}: {v:.3f} [{lo:.3f}, {hi:.3f}] ({g} games, the first {n} seeds of each)"
              for algo, (v, lo, hi, g, n) in values.items()]
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
    """SQV's and BCQ+aug's change of final return against BCQ per env (an env with either one is
    shown) and, for Atari games, human-normalized scores. Returns the envs of the first panel."""
    import matplotlib.pyplot as plt

    finite = lambda value: value is not None and np.isfinite(value)
    rows = [r for r in rows if finite(r["improvement"]) or finite(r["aug_improvement"])]
    atari = [r for r in rows if finite(r["improvement"]) and human_normalized(r["env"], 0.0) is not None]
    fig, axes = plt.subplots(1, 2 if atari else 1, figsize=(11 if atari else 6, 4), squeeze=False)
    ax = axes[0, 0]
    sqv = [(i, 100 * r["improvement"]) for i, r in enumerate(rows) if finite(r["improvement"])]
    aug = [(i, 100 * r["aug_improvement"]) for i, r in enumerate(rows) if finite(r["aug_improvement"])]
    width = 0.4 if aug and sqv else 0.8
    if sqv:
        values = [v for _, v in sqv]
        ax.bar([i for i, _ in sqv], values, width, color=["tab:green" if v >= 0 else "tab:red" for v in values],
               label="SQV vs BCQ")
        ax.axhline(np.mean(values), color="black", linestyle="--", label=f"SQV mean {np.mean(values):+.1f}%")
    if aug:  # --aug's improvement beside SQV's: how much of SQV's change augmentation alone gives
        ax.bar([i + (width if sqv else 0) for i, _ in aug], [v for _, v in aug], width, color="tab:gray",
               label="BCQ+aug vs BCQ")
    if rows:
        ax.legend(fontsize=8)
    x = np.arange(len(rows))
    ax.set_xticks(x + (width / 2 if aug and sqv else 0), [r["env"] for r in rows], rotation=45, ha="right")
    ax.set(title="change of final return vs BCQ: (X − BCQ) / |BCQ|", ylabel="%")
    if atari:
        ax = axes[0, 1]
        x = np.arange(len(atari))
        for k, algo in enumerate(ALGOS):
            ax.bar(x + 0.4 * k, [float(human_normalized(r["env"], r[algo][0])) for r in atari], 0.4, label=algo)
        ax.set_xticks(x + 0.2, [r["env"] for r in atari], rotation=45)
        ax.set(title="human-normalized final score", ylabel="(score − random) / (human − random)")
        ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)
    return [r["env"] for r in rows]


def plot_aggregate(aggregate: dict, path: str) -> None:
    """One panel per aggregate (Atari, other envs): each algorithm's IQM with its 95% CI."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(aggregate), figsize=(5 * len(aggregate), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], aggregate.items()):
        _, _, panel, score = AGGREGATES[name]
        algos = list(values)
        iqms = np.array([values[a][0] for a in algos])
        errors = np.array([iqms - [values[a][1] for a in algos], [values[a][2] for a in algos] - iqms])
        ax.barh(range(len(algos)), iqms, xerr=np.maximum(errors, 0.0), color=[COLORS[a] for a in algos], capsize=4)
        ax.set_yticks(range(len(algos)), [f"{LABELS[a]} (n={values[a][4]})" for a in algos])
        ax.set(title=f"{panel}: IQM over {next(iter(values.values()))[3]} games",
               xlabel=f"{score} (95% CI); n = seeds per game")
    save_figure(fig, path)
    plt.close(fig)


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
    aggregate = {name: values for name, (normalizer, *_) in AGGREGATES.items()
                 if (values := normalized_iqm(found, normalizer, np.random.default_rng(seed), last))}
    for name, values in aggregate.items():
        table += "\n\n" + aggregate_text(AGGREGATES[name][1], values)
    if aggregate:
        paths.append(os.path.join(out_dir, "aggregate.png"))
        plot_aggregate(aggregate, paths[-1])
    improvements = improvement_probabilities(found, np.random.default_rng(seed), last)
    if improvements:
        table += "\n\nProbability of improvement, P(X > Y) over pairs of runs averaged over envs (95% stratified bootstrap CI):\n"
        table += "\n".join(f"- P({LABELS[x]} > {LABELS[y]}) = {p:.2f} [{lo:.2f}, {hi:.2f}] ({n} envs)"
                            for (x, y), (p, lo, hi, n) in improvements.items())
    table_path = os.path.join(out_dir, "table.md")
    with atomic_open(table_path) as f:
        f.write((table + "\n").encode())
    return {"figures": paths, "table": table_path, "rows": rows, "markdown": table, "iqm": aggregate,
            "improvement_probability": improvements}


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
    try:
        report = make_report(args.results_dir, args.out_dir, last=args.last)
    except FileNotFoundError as err:
        print(f"error: {err}", file=__import__("sys").stderr)
        return 2
    print(report["markdown"])
    print("\n".join(["", *report["figures"], report["table"]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
