"""The report's figures: learning curves per env (mean over seeds, shaded 95% percentile bootstrap band
over seeds, the behavioral and buffer-policy returns as horizontal lines) and all envs in one figure;
each arm's change against BCQ and the Atari games' human-normalized scores; the groups' IQMs and
performance profiles; h-DQN's and the flat DQN's return per training episode."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from common.io import atomic_open
from common.learning.algorithms import BY_PREFIX
from common.reporting.aggregates import AGGREGATES
from common.reporting.results import (ARMS, BASELINE, CURVES, EPISODE_KINDS, VERSUS, Found, buffer_means,
                                      collect_episodes, eval_steps, final)
from common.reporting.scores import bootstrap_mean_ci, human_normalized


@dataclass
class Curves:
    """What the learning-curve figures read besides the returns: the eval CSVs' iterations (x values)
    of ``results_dir``, the bands' bootstrap generator, and ``last`` for the behavioral agent's final score."""
    results_dir: str
    rng: np.random.Generator
    last: int = 1


def save_figure(fig, path: str) -> None:
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")


def draw_band(ax, curves: np.ndarray, steps: np.ndarray, rng: np.random.Generator, color: str, label: str) -> None:
    """The mean over seeds (rows of ``curves``) and its 95% bootstrap band."""
    low, high = bootstrap_mean_ci(curves, rng)
    ax.plot(steps, curves.mean(0), color=color, label=f"{label} (n={len(curves)})")
    ax.fill_between(steps, low, high, color=color, alpha=0.25)


def draw_references(ax, kinds: dict, last: int) -> None:
    """The behavioral agent's final return and the buffer policy's mean return, as horizontal lines."""
    behavioral = final(kinds["behavioral"], last) if kinds.get("behavioral") else None
    for values, label, style in ((behavioral, "behavioral", "--"),
                                 (buffer_means(kinds.get("buffer_returns")), "buffer policy", ":")):
        if values is not None:
            value = float(np.mean(values))
            ax.axhline(value, color="gray", linestyle=style, label=f"{label} ({value:.1f})")


def draw_env(ax, env: str, kinds: dict, curves_of: Curves, title: str) -> None:
    """The learning curves of one env (mean over seeds, 95% bootstrap band) and its reference lines."""
    axes = {algo: eval_steps(curves_of.results_dir, algo, env, min(runs), min(len(r) for r in runs.values()))
            for algo in CURVES if (runs := kinds.get(algo))}
    use_iterations = all(label == "training iterations" for _, label in axes.values())
    for algo in axes:
        runs = kinds[algo]
        length = min(len(runs[s]) for s in runs)
        curves = np.stack([runs[s][:length] for s in sorted(runs)])
        steps = axes[algo][0] if use_iterations else np.arange(1, length + 1)  # one x unit for every curve
        draw_band(ax, curves, steps, curves_of.rng, BY_PREFIX[algo].color, BY_PREFIX[algo].label)
    draw_references(ax, kinds, curves_of.last)
    xlabel = "training iterations" if use_iterations else "evaluation"
    ax.set(title=title, xlabel=xlabel, ylabel="mean evaluation return")
    if use_iterations:  # 20k, not 20000: readable ticks in small panels
        from matplotlib.ticker import FuncFormatter
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"))
    ax.legend(fontsize=7)


def plot_env(env: str, kinds: dict, curves_of: Curves, path: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    draw_env(ax, env, kinds, curves_of, f"{env}  (bands: 95% bootstrap CI over seeds)")
    save_figure(fig, path)
    plt.close(fig)


def plot_curves(found: Found, curves_of: Curves, path: str, columns: int = 4) -> None:
    """Every env's learning curves in one figure (for a study over many envs)."""
    import matplotlib.pyplot as plt

    envs = [env for env in sorted(found) if any(found[env].get(algo) for algo in CURVES)]
    rows = -(-len(envs) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.4 * rows), squeeze=False)
    for ax, env in zip(axes.flat, envs):
        draw_env(ax, env, found[env], curves_of, env)
    for ax in list(axes.flat)[len(envs):]:
        ax.axis("off")
    fig.suptitle("mean over seeds, bands: 95% bootstrap CI over seeds")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def draw_bars(ax, envs: list[dict], arms: list[str], value) -> None:
    """Grouped bars: per env (a summary row), one bar per arm of height ``value(row, arm)``."""
    width = 0.8 / max(len(arms), 1)
    for k, algo in enumerate(arms):
        ax.bar(np.arange(len(envs)) + k * width, [value(r, algo) for r in envs], width, color=BY_PREFIX[algo].color,
               label=BY_PREFIX[algo].label)
    ax.set_xticks(np.arange(len(envs)) + width * (len(arms) - 1) / 2, [r["env"] for r in envs], rotation=45, ha="right")
    ax.axhline(0, color="black", linewidth=0.8)
    if arms:
        ax.legend(fontsize=7)


def plot_summary(rows: list[dict], path: str) -> list[str]:
    """Each arm's change of final return against BCQ per env (an env where any arm has one is shown)
    and, for Atari games, each arm's human-normalized score. Returns the envs of the first panel."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if any(np.isfinite(v) for v in r[VERSUS].values())]
    arms = [a for a in ARMS if any(np.isfinite(r[VERSUS].get(a, np.nan)) for r in rows)]
    atari = [r for r in rows if human_normalized(r["env"], 0.0) is not None]
    fig, axes = plt.subplots(1, 2 if atari else 1, figsize=(11 if atari else 6, 4), squeeze=False)
    draw_bars(axes[0, 0], rows, arms, lambda r, algo: 100 * r[VERSUS].get(algo, np.nan))
    baseline = BY_PREFIX[BASELINE].label
    axes[0, 0].set(title=f"change of final return vs {baseline}: (X − {baseline}) / |{baseline}|", ylabel="%")
    if atari:
        draw_bars(axes[0, 1], atari, [a for a in CURVES if any(r[a] for r in atari)],
                  lambda r, algo: float(human_normalized(r["env"], r[algo][0])) if r[algo] else np.nan)
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
        ax.barh(range(len(algos)), iqms, xerr=np.maximum(errors, 0.0), color=[BY_PREFIX[a].color for a in algos],
                capsize=4)
        ax.set_yticks(range(len(algos)), [f"{BY_PREFIX[a].label} (n={values[a][4]})" for a in algos])
        ax.set(title=f"{panel}: IQM over {next(iter(values.values()))[3]} games",
               xlabel=f"{score} (95% CI); n = seeds per game")
        taus, profiles = group["profiles"]
        labels = {a: BY_PREFIX[a].label for a in profiles}
        colors = {labels[a]: BY_PREFIX[a].color for a in profiles}
        plot_utils.plot_performance_profiles({labels[a]: p[0] for a, p in profiles.items()}, taus,
                                             {labels[a]: np.stack(p[1:]) for a, p in profiles.items()},
                                             ax=axes[1, column], colors=colors,
                                             xlabel=f"{score} (τ)", ylabel="fraction of runs with score > τ")
        axes[1, column].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


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

    paths = []
    for env, kinds in sorted(collect_episodes(results_dir).items()):
        if "hDQN" not in kinds:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for kind, (label, color) in EPISODE_KINDS.items():
            if kind in kinds:
                length = min(len(r) for r in kinds[kind].values())
                curves = np.stack([moving_average(kinds[kind][s][:length], window) for s in sorted(kinds[kind])])
                draw_band(ax, curves, np.arange(1, length + 1), rng, color, label)
        ax.set(title=env, xlabel="training episode", ylabel=f"extrinsic reward (mean of last {window} episodes)")
        ax.legend(fontsize=8)
        paths.append(os.path.join(out_dir, f"{env}_episodes.png"))
        save_figure(fig, paths[-1])
        plt.close(fig)
    return paths
