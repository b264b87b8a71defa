"""The report of a results directory: every figure and the table (`table.md`), as plot.py, sweep.py and
main.py's pipeline make it."""
from __future__ import annotations

import os

import numpy as np

from common.errors import UserError
from common.io import atomic_save_text
from common.learning.algorithms import BY_NAME
from common.reporting.aggregates import AGGREGATES, aggregate_groups, aggregate_text
from common.reporting.figures import Curves, plot_aggregate, plot_curves, plot_env, plot_episodes, plot_summary
from common.reporting.results import BASELINE, CURVES, Found, collect
from common.reporting.table import markdown_table, summarize


def draw_curves(found: Found, curves_of: Curves, out_dir: str) -> list[str]:
    """Each env's learning curves, h-DQN's training episodes and, for several envs, all curves in one
    figure, in this order (they draw their bands from one generator); returns their paths."""
    paths = []
    for env, kinds in sorted(found.items()):
        paths.append(os.path.join(out_dir, f"{env}.png"))
        plot_env(env, kinds, curves_of, paths[-1])
    paths += plot_episodes(curves_of.results_dir, out_dir, curves_of.rng)
    if sum(any(kinds.get(algo) for algo in CURVES) for kinds in found.values()) > 1:
        paths.append(os.path.join(out_dir, "curves.png"))
        plot_curves(found, curves_of, paths[-1])
    return paths


def make_report(results_dir: str, out_dir: str, seed: int = 0, last: int = 1) -> dict[str, object]:
    """Draw every figure and write the table; returns the paths and the summary rows. A run's final
    score is the mean of its last ``last`` evaluations."""
    import matplotlib
    matplotlib.use("Agg")

    found = collect(results_dir)
    if not found:
        kinds = f"{BASELINE}_*, {BY_NAME['sqv'].prefix}_*, behavioral_*"
        raise UserError(f"no results files ({kinds}) in {results_dir}")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write the report to {out_dir} ({err.strerror}); choose another --out_dir") from None
    # the figures' bands; each statistic of the table has its own seed
    paths = draw_curves(found, Curves(results_dir, np.random.default_rng(seed), last), out_dir)
    rows = summarize(found, last)
    paths.append(os.path.join(out_dir, "summary.png"))
    plot_summary(rows, paths[-1])
    table = markdown_table(rows)
    if last > 1:
        table += f"\n\nFinal scores (behavioral and offline) are each run's mean of its last {last} evaluations."
    groups = aggregate_groups(found, seed, last)
    for name, group in groups.items():
        table += "\n\n" + aggregate_text(AGGREGATES[name][1], group)
    if any(group["iqm"] for group in groups.values()):
        paths.append(os.path.join(out_dir, "aggregate.png"))
        plot_aggregate({name: group for name, group in groups.items() if group["iqm"]}, paths[-1])
    table_path = atomic_save_text(os.path.join(out_dir, "table.md"), table + "\n")
    return {"figures": paths, "table": table_path, "rows": rows, "markdown": table,
            **{key: {name: group[key] for name, group in groups.items()}
                 for key in ("iqm", "poi", "paired", "paired_by_env")}}
