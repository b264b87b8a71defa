"""The comparison table: per env, mean ± sample std over seeds (n) of the behavioral agent's, the
buffer's and every arm's final returns, and each arm's relative change against the baseline (BCQ),
(X − BCQ) / |BCQ| of the seed means."""
from __future__ import annotations

import numpy as np

from common.learning.algorithms import BY_PREFIX
from common.reporting.results import ARMS, BASELINE, CURVES, VERSUS, Found, buffer_means, final
from common.reporting.scores import relative_improvement

Cell = tuple[float, float, int]  # (mean, sample std, n)


def mean_std(values: np.ndarray) -> Cell:
    """(mean, sample standard deviation (ddof=1; nan for one value), n)."""
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan"), len(values)


def summarize(found: Found, last: int = 1) -> list[dict]:
    """One row per env: (mean, std, n) over seeds of each figure, and each arm's change against BCQ."""
    rows = []
    for env, kinds in sorted(found.items()):
        row = {"env": env}
        per_kind = {"behavioral": final(kinds["behavioral"], last) if kinds.get("behavioral") else None,
                    "buffer": buffer_means(kinds.get("buffer_returns")),
                    **{algo: final(kinds[algo], last) if kinds.get(algo) else None for algo in CURVES}}
        for key, values in per_kind.items():
            row[key] = None if values is None else mean_std(values)
        row[VERSUS] = {algo: relative_improvement(row[algo][0], row[BASELINE][0])
                       for algo in ARMS if row[algo] and row[BASELINE]}
        rows.append(row)
    return rows


def cell(value: Cell | None) -> str:
    """``mean ± std (n)``; ``mean (n)`` for one seed; a dash where the env has none."""
    if value is None:
        return "—"
    return f"{value[0]:.1f} ({value[2]})" if value[2] < 2 else f"{value[0]:.1f} ± {value[1]:.1f} ({value[2]})"


def percent(value: float | None) -> str:
    """A relative change in percent; a dash where it is undefined (the baseline's mean is 0)."""
    return "—" if value is None or not np.isfinite(value) else f"{100 * value:+.1f}%"


def markdown_table(rows: list[dict]) -> str:
    """The table in Markdown, with a column for every arm that ran and its change against BCQ."""
    arms = [algo for algo in CURVES if any(r[algo] for r in rows)]  # columns only for arms that ran
    versus = [algo for algo in arms if algo != BASELINE and any(algo in r[VERSUS] for r in rows)]
    header = ["env", "behavioral", "buffer", *(BY_PREFIX[a].label for a in arms),
              *(f"{BY_PREFIX[a].label} vs {BY_PREFIX[BASELINE].label}" for a in versus)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["env"], cell(r["behavioral"]), cell(r["buffer"]), *(cell(r[a]) for a in arms),
                 *(percent(r[VERSUS].get(a)) for a in versus)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
