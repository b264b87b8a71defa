"""Learning curves, a summary figure and a comparison table from a results directory.

    python plot.py                       # reads ./results, writes ./plots
    python plot.py --results_dir runs1/results --out_dir figs
    python plot.py --last 3              # a run's final score: the mean of its last 3 evaluations
    python plot.py --results_dir bf16/results --against fp32/results   # run for run: bf16 − fp32

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

``--against B`` compares instead: the runs of ``--results_dir`` (A) and of B that share arm, env and seed
(the same buffers trained twice with one thing changed), A − B per env and arm with 95% t-intervals and
pooled behavior-normalized (`common/reporting/compare.py`); printed and written to ``{out_dir}/against.md``.
"""
from __future__ import annotations

import argparse
import os
import sys

from common.errors import Parser, UserError
from common.io import existing_ancestor
from common.reporting.report import make_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = Parser("plot.py", description=__doc__)
    parser.add_argument("--results_dir", type=str, default="results", help="where the results/*.npy files are")
    parser.add_argument("--out_dir", type=str, default="plots", help="where the PNG files and table.md go")
    parser.add_argument("--last", type=int, default=1,
                        help="a run's final score is the mean of its last N evaluations (default 1: the last)")
    parser.add_argument("--against", type=str, default=None,
                        help="another results directory of the same settings: A − B run for run (see above)")
    return parser.parse_args(argv)


def problem(args: argparse.Namespace) -> str | None:
    """The one-line error of arguments that cannot make a report, or None."""
    if args.last < 1:
        return f"--last must be at least 1, not {args.last}"
    for where in (args.results_dir, args.against):
        if where is not None and not os.path.isdir(where):
            return f"no results directory {where}; run python main.py --pipeline first"
    if args.against is not None and os.path.samefile(args.results_dir, args.against):
        return f"--against {args.against} is --results_dir itself; give the other run's results folder"
    existing = existing_ancestor(os.path.abspath(args.out_dir))
    if not os.path.isdir(existing):
        return f"--out_dir {args.out_dir}: {existing} is a file, not a folder; choose another --out_dir"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    message = problem(args)
    if message is None:
        try:
            if args.against:
                return against(args)
            report = make_report(args.results_dir, args.out_dir, last=args.last)
        except UserError as err:
            message = str(err)
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(report["markdown"])
    print("\n".join(["", *report["figures"], report["table"]]))
    return 0


def against(args: argparse.Namespace) -> int:
    from common.io import atomic_save_text
    from common.reporting.compare import compare_markdown

    text = compare_markdown(args.results_dir, args.against, args.last)
    try:
        path = atomic_save_text(os.path.join(args.out_dir, "against.md"), text + "\n")
    except OSError as err:
        raise UserError(f"cannot write the comparison to {args.out_dir} ({err.strerror}); choose another --out_dir") from None
    print(f"{text}\n\n{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
