"""The algorithms, defined once: each one's name (sweep configs), command-line flags, results file
prefix, label and color (tables and figures), learner (the class each family maps it to: the families'
``LEARNERS``) and, for the two-view learners, its view formulation and target rule. main.py, plot.py,
sweep.py and both families read this table; adding an algorithm is one line here plus its learner.

Two-view learners (docs/DESIGN.md §4) train on two views of every sampled transition:
- views ``independent`` (the released SQV code): view k = (aug s, aug s'), all four augmentations
  independent; ``clean`` (the paper's wording): view 1 = (s, s') un-augmented, view 2 = (aug s, aug s').
- targets ``swap`` (SQV): each view regresses on the other's target; ``own``: each on its own;
  ``mean`` (BCQ+aug, DrQ): both on the mean of the two.
"""
from __future__ import annotations

from dataclasses import dataclass

VIEWS = ("independent", "clean")
TARGETS = ("swap", "own", "mean")


@dataclass(frozen=True)
class Algorithm:
    name: str                 # the sweep config's key, e.g. "sqv-clean"
    prefix: str               # results/{prefix}_{setting}.npy, models/{prefix}_{setting}_*
    label: str                # tables and figures
    color: str                # figures (a matplotlib color)
    flags: tuple[str, ...]    # main.py's flags that select it
    learner: str = "BCQ"      # its class in each family's LEARNERS
    views: str | None = None  # None: BCQ's single un-augmented view
    targets: str | None = None
    stage: str = "offline"    # the sweep stage that runs it

    @property
    def two_views(self) -> bool:
        return self.views is not None


def _arm(name: str, prefix: str, label: str, color: str, views: str, targets: str, flags=None) -> Algorithm:
    return Algorithm(name, prefix, label, color, tuple(flags or ("--views", views, "--targets", targets)), "SQV",
                     views, targets)


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("bcq", "BCQ", "BCQ", "tab:blue", ()),
    _arm("bcq-aug", "BCQaug", "BCQ+aug", "tab:green", "independent", "mean", ["--aug"]),
    _arm("sqv", "SQV", "SQV", "tab:orange", "independent", "swap", ["--sqv"]),
    _arm("own", "SQVown", "own targets", "tab:red", "independent", "own"),
    _arm("sqv-clean", "SQVclean", "SQV-clean", "tab:purple", "clean", "swap"),
    _arm("clean-own", "SQVcleanOwn", "clean-own", "tab:brown", "clean", "own"),
    _arm("bcq-aug-clean", "BCQaugClean", "BCQ+aug-clean", "tab:olive", "clean", "mean"),
    Algorithm("sqil", "SQIL", "SQIL", "tab:gray", ("--sqil",), "SQIL", stage="sqil"),
)
OFFLINE = tuple(a for a in ALGORITHMS if a.stage == "offline")
BY_NAME = {a.name: a for a in ALGORITHMS}
BY_PREFIX = {a.prefix: a for a in ALGORITHMS}
# The report's paired contrasts (X − Y on the same buffers) beside every arm against BCQ: what the swap
# changes under each view formulation (the first: study v2's primary endpoint), the swap against the mean,
# and what the views change under the swap (clean against independent).
CONTRASTS = (("SQVclean", "SQVcleanOwn"), ("SQV", "SQVown"), ("SQV", "BCQaug"), ("SQVclean", "SQV"))


def offline_algorithm(views: str | None, targets: str | None) -> Algorithm:
    """The offline algorithm of a view formulation and a target rule (both None: BCQ)."""
    if views is None and targets is None:
        return BY_NAME["bcq"]
    return next(a for a in OFFLINE if (a.views, a.targets) == (views or "independent", targets or "swap"))
