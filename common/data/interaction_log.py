"""Reading a log of interactions (``--dataset interactions:FILE``) and splitting it per user.

A log is a MovieLens ``.dat`` (``UserID::MovieID::Rating::Timestamp``, no header) or a CSV/TSV with a
header whose user, item, rating-or-behavior and timestamp columns ``--rec_columns`` names (a click log
may omit the rating). It is read in chunks with pandas' C parser, and each user's rows are put in time
order (rows with equal timestamps keep the file's order). Per user, the last ``--rec_holdout`` k items
are held out; the rest is the training part, whose items make the catalog. Users with fewer than
k + N interactions (N = ``--rec_history``) are skipped and counted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from common.errors import UserError

CHUNK = 1 << 18  # rows per parsed chunk


@dataclass
class Log:
    users: np.ndarray      # int64 raw ids, in time order per user (users grouped)
    items: np.ndarray      # int64 raw ids
    reward: np.ndarray     # float32
    notes: list[str]


def parse_reward_rule(rule: str):
    """``threshold:X`` (1 when the rating ≥ X, else 0), ``map:V=R,...`` (rating or behavior value →
    reward, e.g. map:pv=0,cart=0.5,buy=1) or ``click`` (every row 1)."""
    kind, _, rest = rule.partition(":")
    if kind == "click" and not rest:
        return lambda values: np.ones(len(values), np.float32)
    if kind == "threshold" and rest:
        try:
            threshold = float(rest)
        except ValueError:
            threshold = float("nan")
        if np.isfinite(threshold):
            def by_threshold(values):
                ratings = numeric(values, "rating")
                return (ratings >= threshold).astype(np.float32)
            return by_threshold
    if kind == "map" and rest:
        try:
            table = {key.strip(): float(value) for key, value in (pair.split("=") for pair in rest.split(","))}
        except ValueError:
            table = {}
        if table and all(np.isfinite(list(table.values()))):
            def by_map(values):
                keys = np.asarray(values).astype(str)
                unknown = sorted(set(map(str, np.unique(keys))) - set(table))
                if unknown:
                    raise UserError(f"--rec_reward {rule}: the log holds {unknown[0]!r}, which the map does not name")
                return np.vectorize(table.__getitem__, otypes=[np.float32])(keys)
            return by_map
    raise UserError(f"--rec_reward {rule}: expected threshold:X (reward 1 for a rating ≥ X), map:VALUE=REWARD,... "
                    "(e.g. map:1=-1,2=-0.5,3=0,4=0.5,5=1 or map:pv=0,cart=0.5,buy=1) or click")


def numeric(values, what: str, integer: bool = False) -> np.ndarray:
    import pandas as pd

    out = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(out) | (((out != np.round(out)) | (np.abs(out) >= 2 ** 53)) if integer else False)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        kind = "an integer below 2^53" if integer else "a number"
        raise BadRow(row, f"{what} {np.asarray(values)[row]!r} is not {kind}")
    return out


class BadRow(Exception):
    def __init__(self, row: int, message: str):
        super().__init__(message)
        self.row = row


def read_log(path: str, columns: str, reward_rule: str) -> Log:
    """The log at ``path``, users grouped and each user's rows in time order, with rewards."""
    if not os.path.isfile(path):
        raise UserError(f"--dataset interactions:{path}: no such file")
    with open(path, "rb") as f:
        first = f.readline().decode("utf-8", "replace")
    if not first.strip():
        raise UserError(f"--dataset interactions:{path}: the file is empty; give a ratings .dat or a CSV/TSV with a header")
    names = [c.strip() for c in columns.split(",")]
    reward_of = parse_reward_rule(reward_rule)
    if len(names) not in (3, 4) or len(set(names)) != len(names):
        raise UserError(f"--rec_columns {columns}: name the user, item, rating (or behavior) and timestamp columns, "
                        "e.g. userId,movieId,rating,timestamp (three without the rating, for a click log)")
    options, rename = csv_options(path, first, names)
    return in_time_order(*read_rows(path, options, rename, reward_of))


def csv_options(path: str, first: str, names: list[str]) -> tuple[dict, dict]:
    """pandas' options for the log whose first line is ``first``, and the renaming of its columns to
    user, item, rating, time."""
    if "::" in first:  # MovieLens .dat: positional, no header
        # every field read (no usecols), so a row with more than four fields is an error, not silently cut
        options = dict(sep=":", header=None, names=["u", "_1", "i", "_2", "r", "_3", "t"])
        width = len(first.strip().split("::"))
        if width != 4:
            raise UserError(f"{path}: a '::' file must hold UserID::ItemID::Rating::Timestamp; its first line has "
                            f"{width} fields")
        return options, {"u": "user", "i": "item", "r": "rating", "t": "time"}
    sep = "\t" if "\t" in first else ","
    header = [h.strip() for h in first.strip().split(sep)]
    missing = [name for name in names if name not in header]
    if missing:
        shown = ", ".join(header)
        if not shown.isprintable():  # a binary file
            raise UserError(f"{path}: its first line is not text; give a ratings .dat or a CSV/TSV with a header")
        shown = shown if len(shown) <= 120 else shown[:120] + "…"
        raise UserError(f"{path}: no column {missing[0]!r} (its header has {shown}); name the user, "
                        "item, rating and timestamp columns with --rec_columns")
    options = dict(sep=sep, header=0, usecols=names)
    return options, dict(zip(names, ["user", "item", "rating", "time"] if len(names) == 4 else ["user", "item", "time"]))


def read_rows(path: str, options: dict, rename: dict, reward_of) -> tuple[np.ndarray, ...]:
    """(users, items, rewards, times) of every data row, in the file's order."""
    import pandas as pd

    users, items, rewards, times, start = [], [], [], [], 0
    try:
        for chunk in pd.read_csv(path, dtype=str, chunksize=CHUNK, engine="c", keep_default_na=False, **options):
            chunk = chunk.rename(columns=rename)
            try:
                if "_1" in chunk:  # a '::' file: the fields between the '::' separators are empty
                    misplaced = (chunk[["_1", "_2", "_3"]].to_numpy() != "").any(axis=1)
                    if misplaced.any():
                        raise BadRow(int(np.flatnonzero(misplaced)[0]), "is not UserID::ItemID::Rating::Timestamp")
                users.append(numeric(chunk["user"].to_numpy(), "user id", integer=True).astype(np.int64))
                items.append(numeric(chunk["item"].to_numpy(), "item id", integer=True).astype(np.int64))
                times.append(numeric(chunk["time"].to_numpy(), "timestamp").astype(np.float64))
                rewards.append(reward_of(chunk["rating"].to_numpy() if "rating" in chunk else np.ones(len(chunk))))
            except BadRow as err:
                raise UserError(f"{path}: data row {start + err.row + 1}: {err}") from None
            start += len(chunk)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path}: not a readable log ({str(err).splitlines()[0][:120]})") from None
    if not start:
        raise UserError(f"--dataset interactions:{path}: the file has no data rows")
    return tuple(np.concatenate(parts) for parts in (users, items, rewards, times))


def in_time_order(users: np.ndarray, items: np.ndarray, reward: np.ndarray, time: np.ndarray) -> Log:
    """The rows grouped by user, each user's in time order (ties keep the file's order), with notes on
    the ties and on the rows that were out of order."""
    order = np.lexsort((np.arange(len(users)), time, users))  # by user, then time, then file order
    notes = []
    grouped_time = time[order]
    same_user = users[order][1:] == users[order][:-1]
    ties = int((same_user & (grouped_time[1:] == grouped_time[:-1])).sum())
    if ties:
        notes.append(f"{ties} interactions share their user's previous timestamp: they keep the file's order")
    by_file = np.lexsort((np.arange(len(users)), users))
    unsorted = int((np.diff(time[by_file])[users[by_file][1:] == users[by_file][:-1]] < 0).sum())
    if unsorted:
        notes.append(f"{unsorted} interactions came before an earlier-timestamped one of their user: each user's "
                     "interactions were put in time order")
    return Log(users[order], items[order], reward[order], notes)


@dataclass
class Split:
    """Catalog indices; per evaluated user the last N training items (newest first), the k held-out
    items (−1 where the item is not in the catalog) and the training items to exclude."""
    history: np.ndarray            # (U, N) int64
    heldout: np.ndarray            # (U, k) int64
    seen_offsets: np.ndarray       # (U + 1,) into seen_items
    seen_items: np.ndarray
    popularity: np.ndarray         # (items,) training counts
    train_users: np.ndarray        # per training row: the user's index
    train_items: np.ndarray        # per training row: catalog index
    train_reward: np.ndarray
    skipped: int
    raw_items: np.ndarray          # catalog index → raw item id


def split(log: Log, history: int, holdout: int) -> Split:
    """Leave-last-k-out per user; the catalog is the items of the training part."""
    starts = np.flatnonzero(np.r_[True, log.users[1:] != log.users[:-1]])
    counts = np.diff(np.r_[starts, len(log.users)])
    keep = counts >= holdout + history
    if not keep.any():
        raise UserError(f"no user has at least --rec_holdout + --rec_history = {holdout + history} interactions; "
                        "lower them")
    position = np.arange(len(log.users)) - np.repeat(starts, counts)
    length = np.repeat(counts, counts)
    kept_row = np.repeat(keep, counts)
    train = kept_row & (position < length - holdout)
    raw_items, train_items = np.unique(log.items[train], return_inverse=True)
    if len(raw_items) > 2 ** 31 - 1:
        raise UserError(f"the log's training part holds {len(raw_items)} items; at most 2^31 − 1 fit")
    user_index = np.cumsum(keep) - 1
    row_user = np.repeat(user_index, counts)
    held_raw = log.items[kept_row & ~train]
    at = np.minimum(np.searchsorted(raw_items, held_raw), len(raw_items) - 1)
    held = np.where(raw_items[at] == held_raw, at, -1).astype(np.int64).reshape(-1, holdout)
    catalog_of_row = np.full(len(log.users), -1, np.int64)
    catalog_of_row[train] = train_items
    last = starts[keep] + counts[keep] - holdout  # each kept user's first held-out row
    hist = np.stack([catalog_of_row[last - 1 - j] for j in range(history)], axis=1)
    seen_counts = counts[keep] - holdout
    return Split(hist, held, np.r_[0, np.cumsum(seen_counts)], train_items.astype(np.int64),
                 np.bincount(train_items, minlength=len(raw_items)), row_user[train], train_items.astype(np.int64),
                 log.reward[train], int((~keep).sum()), raw_items)
