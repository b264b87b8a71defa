"""Two results folders of runs on the same buffers, compared run for run (``plot.py --against``): the same
arm, env and seed trained twice with one thing changed (``--precision bf16`` against fp32, a flag ablation).

Per env and arm, the paired difference of final scores A − B over the seeds both folders have with as many
evaluations (a run still going, or one of another protocol, is left out and named), with its 95% t-interval;
then per arm, pooled over envs, the behavior-normalized difference (score ÷ (behavioral − random): the random
score cancels) where the behavioral agent's results and a random score are known.
"""
from __future__ import annotations

import numpy as np

from common.errors import UserError
from common.reporting.aggregates import behavior_normalizer
from common.reporting.results import CURVES, collect, final_score
from common.reporting.scores import paired_difference


def _interval(estimate: tuple[float, float, float, int]) -> str:
    mean, low, high, n = estimate
    spread = f" [{low:+.3f}, {high:+.3f}]" if n > 1 else " (one pair: no interval)"
    return f"{mean:+.3f}{spread}"


def compare(a_dir: str, b_dir: str, last: int = 1) -> dict:
    """The rows (env, arm, n, mean A, mean B, A − B with its CI) and the pooled rows (arm, n, normalized
    A − B with its CI) of the runs both folders have."""
    a, b = collect(a_dir), collect(b_dir)
    rows, pooled, unequal = [], {}, []
    for env in sorted(set(a) & set(b)):
        kinds = {**b[env], **a[env]}  # the behavioral agent's results may sit in either folder
        normalize = behavior_normalizer(env, kinds, last)
        for algo in CURVES:
            seeds = []
            for s in sorted(set(a[env].get(algo, {})) & set(b[env].get(algo, {}))):
                n_a, n_b = len(a[env][algo][s]), len(b[env][algo][s])
                if n_a == n_b:
                    seeds.append(s)
                else:  # another protocol, or a run still going: not a pair
                    unequal.append(f"{env} {algo} seed {s} ({n_a} evaluations in A, {n_b} in B)")
            if not seeds:
                continue
            x = np.array([final_score(a[env][algo][s], last) for s in seeds])
            y = np.array([final_score(b[env][algo][s], last) for s in seeds])
            rows.append({"env": env, "algo": algo, "seeds": seeds, "a": float(x.mean()), "b": float(y.mean()),
                         "difference": paired_difference(x - y)})
            if normalize is not None:
                pooled.setdefault(algo, []).extend(normalize(x) - normalize(y))
    if not rows:
        raise UserError(f"{a_dir} and {b_dir} have no arm, env and seed in common: --against compares runs of the "
                        "same settings (e.g. the same buffers trained twice with one flag changed)")
    return {"rows": rows, "pooled": {algo: paired_difference(d) for algo, d in pooled.items()}, "unequal": unequal}


def compare_markdown(a_dir: str, b_dir: str, last: int = 1) -> str:
    result = compare(a_dir, b_dir, last)
    lines = [f"A = {a_dir}, B = {b_dir}; final score = mean of the last {last} evaluation(s); paired by seed "
             "(the same buffer), mean with its 95% t-interval", "",
             "| env | arm | seeds | A | B | A − B |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['env']} | {r['algo']} | {','.join(map(str, r['seeds']))} | {r['a']:.2f} | {r['b']:.2f} | "
              f"{_interval(r['difference'])} |" for r in result["rows"]]
    if result["pooled"]:
        lines += ["", "Pooled over envs, behavior-normalized (A − B) / (behavioral − random):", "",
                  "| arm | pairs | A − B |", "|---|---|---|"]
        lines += [f"| {algo} | {d[3]} | {_interval(d)} |" for algo, d in result["pooled"].items()]
    if result["unequal"]:
        lines += ["", "Left out, their curves differing in length: " + "; ".join(result["unequal"])]
    return "\n".join(lines)
