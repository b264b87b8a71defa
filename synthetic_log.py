"""A MovieLens-1M-shaped synthetic ratings log with a planted structure, for ``--dataset interactions:``.

    python synthetic_log.py ratings.dat                       # 6040 users, 3706 items, ~1M ratings
    python synthetic_log.py small.dat --users 200 --items 300  # a small one (the tests use this)

Each item belongs to one of 18 latent genres and has a Zipf-like popularity; each user prefers one
genre. A user's items come from the preferred genre with probability 0.8 (by popularity within it),
else from the whole catalog (by popularity), each item at most once per user. Ratings are higher in
the preferred genre: round(2.7 + 1.5·[in genre] + N(0, 0.8)) clipped to 1–5. Rows are written as
``UserID::MovieID::Rating::Timestamp``, grouped by user but shuffled within the user (so the reader
must sort by time), and about 5% of a user's steps share the previous timestamp.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from common.errors import Parser
from common.io import atomic_open, existing_ancestor


def synthetic_log(users: int = 6040, items: int = 3706, mean_per_user: float = 165.6, genres: int = 18,
                  in_genre: float = 0.8, seed: int = 0):
    """(user, item, rating, timestamp) int64 columns; ids start at 1 as MovieLens's do."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(genres, size=items)
    popularity = 1.0 / (1.0 + rng.permutation(items)) ** 0.8
    counts = np.minimum(20 + rng.geometric(1.0 / max(mean_per_user - 19, 1.0), size=users), items // 2)
    preferred = rng.integers(genres, size=users)
    present = np.unique(genre)
    if len(present) < genres:  # a small catalogue can leave a genre empty: prefer only genres that have items
        preferred = present[preferred % len(present)]
    rows = []
    everyone = popularity / popularity.sum()
    for user in range(users):
        members = np.flatnonzero(genre == preferred[user])
        inside = popularity[members] / popularity[members].sum()
        n = int(counts[user])
        own = min(int(rng.binomial(n, in_genre)), len(members))
        picked = rng.choice(members, own, replace=False, p=inside)
        rest = rng.choice(items, 3 * (n - own) + 10, replace=True, p=everyone)
        rest = rest[~np.isin(rest, picked)]
        _, first = np.unique(rest, return_index=True)
        picked = np.concatenate([picked, rest[np.sort(first)][:n - own]])
        rng.shuffle(picked)  # the time order of this user's items
        liked = genre[picked] == preferred[user]
        rating = np.clip(np.round(2.7 + 1.5 * liked + rng.normal(0, 0.8, len(picked))), 1, 5)
        steps = rng.exponential(3000, len(picked)).round() * (rng.random(len(picked)) > 0.05)
        time = rng.integers(956_703_932, 1_040_000_000) + np.cumsum(steps)
        order = rng.permutation(len(picked))  # written out of time order
        rows.append(np.stack([np.full(len(picked), user + 1), picked[order] + 1, rating[order], time[order]], 1))
    return np.concatenate(rows).astype(np.int64)


def main(argv=None) -> int:
    parser = Parser("synthetic_log.py", description=__doc__)
    parser.add_argument("out", help="the .dat file to write")
    parser.add_argument("--users", type=int, default=6040, help="users in the log (default: MovieLens-1M's 6040)")
    parser.add_argument("--items", type=int, default=3706, help="items in the catalogue (default: MovieLens-1M's 3706)")
    parser.add_argument("--mean_per_user", type=float, default=165.6,
                        help="mean ratings per user (default: MovieLens-1M's 165.6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the log")
    args = parser.parse_args(argv)
    if not (1 <= args.users <= 10**6 and 40 <= args.items <= 10**7 and 20 <= args.mean_per_user <= 10**4):
        parser.error("give 1 <= --users <= 1e6, 40 <= --items <= 1e7 and 20 <= --mean_per_user <= 1e4")
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, got {args.seed}")
    if not args.out or os.path.isdir(args.out):
        parser.error(f"{args.out!r} is not a file name; give the .dat file to write")
    existing = existing_ancestor(os.path.dirname(os.path.abspath(args.out)))
    if not os.path.isdir(existing):  # checked before the log is made
        parser.error(f"{args.out}: {existing} is a file, not a folder; choose another path")
    log = synthetic_log(args.users, args.items, args.mean_per_user, seed=args.seed)
    try:
        with atomic_open(args.out) as f:
            np.savetxt(f, log, fmt="%d::%d::%d::%d")
    except OSError as err:
        parser.error(f"cannot write {args.out} ({err.strerror}); choose another path")
    print(f"{args.out}: {len(log)} ratings of {args.users} users on {args.items} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
