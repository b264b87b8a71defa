"""Recommendation from logged interactions: ``--dataset interactions:FILE`` with ``--env InteractionLog-v0``.

A log is a MovieLens ``.dat`` (``UserID::MovieID::Rating::Timestamp``, no header) or a CSV/TSV with a
header whose user, item, rating-or-behavior and timestamp columns ``--rec_columns`` names (a click log
may omit the rating). It is read in chunks with pandas' C parser, and each user's rows are put in time
order (rows with equal timestamps keep the file's order). Per user, the last ``--rec_holdout`` k items
are held out; the rest is the training part. Item embeddings are learned from the training part only
(implicit-feedback ALS from the ``implicit`` package: the field's standard, fast on CPU, no hand-written
solver), unit-normalized; items never seen in training are not in the catalog. Transitions, per user
in time order from the N-th training item on (N = ``--rec_history``): state = the embeddings of the
last N consumed items, newest first (as the simulator's); action = the next item's embedding; reward
from the log (``--rec_reward``); not_done = 0 at the user's last training interaction. Users with
fewer than k + N interactions are skipped and counted.

Evaluation is on the held-out items: each user's state is its last N training items; a recommender
ranks the catalog (items the user consumed in training excluded); HR@K is the fraction of users with
a held-out item in the top K, NDCG@K = Σ 1/log2(rank + 2) over held-out items in the top K, divided by
the ideal Σ_{i < min(k, K)} 1/log2(i + 2). Baselines on the same users: random, most popular (training
counts) and item-kNN (cosine of each item to the user's N history items, summed, on the same
embeddings). The env `InteractionLog` serves the same held-out users to the training loop's
evaluation: one step per user, reward = held-out items among the top ``k`` = 10 recommended.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from common.errors import UserError

CUTOFFS = (5, 10, 20)
EVAL_K = 10  # the env's list length: in-training evaluation reports held-out hits in the top 10
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
    import pandas as pd

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
    if "::" in first:  # MovieLens .dat: positional, no header
        options = dict(sep=":", header=None, usecols=[0, 2, 4, 6], names=["u", "_1", "i", "_2", "r", "_3", "t"])
        width = len(first.strip().split("::"))
        if width != 4:
            raise UserError(f"{path}: a '::' file must hold UserID::ItemID::Rating::Timestamp; its first line has "
                            f"{width} fields")
        rename = {"u": "user", "i": "item", "r": "rating", "t": "time"}
    else:
        sep = "\t" if "\t" in first else ","
        header = [h.strip() for h in first.strip().split(sep)]
        missing = [name for name in names if name not in header]
        if missing:
            raise UserError(f"{path}: no column {missing[0]!r} (its header has {', '.join(header)}); name the user, "
                            "item, rating and timestamp columns with --rec_columns")
        options = dict(sep=sep, header=0, usecols=names)
        rename = dict(zip(names, ["user", "item", "rating", "time"] if len(names) == 4 else ["user", "item", "time"]))
    users, items, rewards, times, start = [], [], [], [], 0
    try:
        for chunk in pd.read_csv(path, dtype=str, chunksize=CHUNK, engine="c", keep_default_na=False, **options):
            chunk = chunk.rename(columns=rename)
            try:
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
    users, items, reward, time = (np.concatenate(parts) for parts in (users, items, rewards, times))
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


def learn_embeddings(data: Split, dim: int, seed: int) -> np.ndarray:
    """Unit-norm item embeddings (items, dim) from ALS on the training part's user × item matrix."""
    try:
        from implicit.als import AlternatingLeastSquares
        from scipy.sparse import csr_matrix
    except ImportError:
        raise UserError("--dataset interactions needs the implicit package: pip install -e '.[datasets]'") from None
    from threadpoolctl import threadpool_limits

    users = int(data.train_users.max()) + 1
    matrix = csr_matrix((np.ones(len(data.train_items), np.float32), (data.train_users, data.train_items)),
                        shape=(users, len(data.raw_items)))
    matrix.sum_duplicates()
    with threadpool_limits(1, "blas"):  # implicit asks for single-threaded BLAS
        model = AlternatingLeastSquares(factors=dim, iterations=15, regularization=0.05, random_state=seed,
                                        use_gpu=False)
        model.fit(matrix, show_progress=False)
    items = np.asarray(model.item_factors, np.float32)[:, :dim]
    norms = np.linalg.norm(items, axis=1, keepdims=True)
    return items / np.where(norms > 0, norms, 1.0)


def own_embeddings(source: str, raw_items: np.ndarray) -> np.ndarray:
    """The user's ``--item_embeddings FILE.npy`` for a log: row i is the embedding of raw item id i;
    the catalog's rows, unit-normalized."""
    from common.io import read_npy_flag

    table = read_npy_flag("--item_embeddings", source, "an (item ids, dim) .npy")
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.floating):
        raise UserError(f"--item_embeddings {source}: expected a float array (item ids, dim) whose row i embeds "
                        "item id i")
    if raw_items.min() < 0 or raw_items.max() >= len(table):
        raise UserError(f"--item_embeddings {source} has {len(table)} rows, but the log's training part holds item id "
                        f"{int(raw_items.max() if raw_items.max() >= len(table) else raw_items.min())}; row i must "
                        "embed item id i")
    rows = table[raw_items].astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not (np.isfinite(norms) & (norms > 0)).all():
        raise UserError(f"--item_embeddings {source}: every embedding of an item in the log must be finite and "
                        "non-zero, with a finite norm in float32")
    return rows / norms


def transitions(data: Split, embeddings: np.ndarray, history: int):
    """(state, action, next_state, reward, not_done) of every training step from the N-th item on."""
    users, items = data.train_users, data.train_items
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    position = np.arange(len(users)) - np.repeat(starts, counts)
    rows = np.flatnonzero(position >= history)
    last = np.r_[users[1:] != users[:-1], True]
    window = rows[:, None] - 1 - np.arange(history)[None]            # newest first
    state = embeddings[items[window]].reshape(len(rows), -1)
    next_state = embeddings[items[window + 1]].reshape(len(rows), -1)
    return (state, embeddings[items[rows]], next_state, data.train_reward[rows, None].astype(np.float32),
            (~last[rows])[:, None].astype(np.float32))


def cache_prefix(cfg, path: str) -> str:
    stat = os.stat(path)
    own = cfg.rec_embeddings
    own_key = [os.path.abspath(own), os.stat(own).st_size, os.stat(own).st_mtime_ns] if own else None
    key = json.dumps([os.path.abspath(path), stat.st_size, stat.st_mtime_ns, cfg.rec_columns, cfg.rec_reward,
                      cfg.rec_history, cfg.rec_holdout, cfg.rec_dim, own_key])
    tag = hashlib.sha256(key.encode()).hexdigest()[:8]
    return os.path.join(cfg.out_dir, "buffers", f"interactions_{tag}_{cfg.setting}")


def prepare(cfg) -> str:
    """Build (once) the buffer, the item embeddings and the held-out split of ``--dataset
    interactions:FILE`` under ``buffers/interactions_{tag}_{setting}_*``; returns that prefix."""
    from common.data import manifest
    from common.io import run_lock

    path = cfg.dataset.partition(":")[2]
    if not os.path.isfile(path):
        raise UserError(f"--dataset interactions:{path}: no such file")
    prefix = cache_prefix(cfg, path)

    def built() -> bool:
        return os.path.exists(manifest.manifest_path(prefix)) and not os.path.exists(manifest.marker_path(prefix))

    if built():
        return prefix
    with run_lock(os.path.dirname(prefix), os.path.basename(prefix), f"the cache of {path}", wait=True):
        if not built():  # another run (BCQ beside SQV) may have built it while this one waited
            build(cfg, path, prefix)
    return prefix


def build(cfg, path: str, prefix: str) -> None:
    from common.data import manifest
    from common.data.buffers import ReplayBuffer
    from common.io import atomic_save_npy

    log = read_log(path, cfg.rec_columns, cfg.rec_reward)
    for note in log.notes:
        print(f"note: {path}: {note}")
    data = split(log, cfg.rec_history, cfg.rec_holdout)
    embeddings = (own_embeddings(cfg.rec_embeddings, data.raw_items) if cfg.rec_embeddings
                  else learn_embeddings(data, cfg.rec_dim, cfg.seed))
    state, action, next_state, reward, not_done = transitions(data, embeddings, cfg.rec_history)
    if not len(state):
        raise UserError(f"no user has more than --rec_history = {cfg.rec_history} training interactions: no "
                        "transition to learn from; lower --rec_history or --rec_holdout")
    buffer = ReplayBuffer(state.shape[1:], len(state), 1, "cpu", np.random.default_rng(0),
                          action_shape=action.shape[1:], action_dtype=np.float32)
    buffer.state[:], buffer.action[:], buffer.next_state[:] = state, action, next_state
    buffer.reward[:], buffer.not_done[:] = reward, not_done
    buffer.size, buffer.ptr = len(state), 0
    manifest.begin(prefix)
    extra = [atomic_save_npy(f"{prefix}_item_embeddings.npy", embeddings)]
    for name in ("history", "heldout", "seen_offsets", "seen_items", "popularity", "raw_items"):
        extra.append(atomic_save_npy(f"{prefix}_{name}.npy", getattr(data, name)))
    info = type("Info", (), {"kind": "vector", "state_shape": state.shape[1:],
                             "action_space": gym.spaces.Box(-1.0, 1.0, action.shape[1:], np.float32)})
    manifest.finish(prefix, buffer.save(prefix) + extra, cfg, info, buffer,
                    {"users": len(data.history), "skipped_users": data.skipped, "items": len(embeddings),
                     "log_rows": len(log.users)})
    print(f"[interactions] {path}: {len(log.users)} rows, {len(data.history)} users ({data.skipped} with fewer than "
          f"{cfg.rec_holdout + cfg.rec_history} interactions skipped), {len(embeddings)} items in training; "
          f"{len(state)} transitions → {prefix}_*")


class HeldOut:
    """The held-out evaluation of a prepared log: ``metrics(scores)`` and the three baselines."""

    def __init__(self, prefix: str):
        load = lambda name: np.load(f"{prefix}_{name}.npy")  # noqa: E731
        self.embeddings, self.history, self.heldout = load("item_embeddings"), load("history"), load("heldout")
        self.seen_offsets, self.seen_items, self.popularity = load("seen_offsets"), load("seen_items"), load("popularity")
        self.states = self.embeddings[self.history].reshape(len(self.history), -1)  # each user's state

    def seen_mask(self, users: np.ndarray) -> np.ndarray:
        mask = np.zeros((len(users), len(self.embeddings)), bool)
        for row, user in enumerate(users):
            mask[row, self.seen_items[self.seen_offsets[user]:self.seen_offsets[user + 1]]] = True
        return mask

    def top(self, scores: np.ndarray, users: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` best unseen items per user (ties to the lower index)."""
        scores = np.where(self.seen_mask(users), -np.inf, scores)
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]

    def metrics(self, score: callable, chunk: int = 1024) -> dict[str, float]:
        """HR@K and NDCG@K (K in `CUTOFFS`) of ``score(users) → (len(users), items)`` scores."""
        tops = []
        for first in range(0, len(self.history), chunk):
            users = np.arange(first, min(first + chunk, len(self.history)))
            tops.append(self.top(score(users), users, max(CUTOFFS)))
        return ranking_metrics(np.concatenate(tops), self.heldout)

    def baselines(self, seed: int) -> dict[str, callable]:
        rng = np.random.default_rng(seed)
        unit_items = self.embeddings
        return {
            "random": lambda users: rng.random((len(users), len(unit_items))),
            "most popular": lambda users: np.broadcast_to(self.popularity.astype(float), (len(users), len(unit_items))),
            "item-kNN": lambda users: (unit_items[self.history[users]] @ unit_items.T).sum(1),
        }


def ranking_metrics(top: np.ndarray, heldout: np.ndarray, cutoffs=CUTOFFS) -> dict[str, float]:
    """HR@K and NDCG@K of ranked lists ``top`` (U, ≥K) against each user's held-out items (U, k; −1 =
    an item outside the catalog, never hit but counted in the ideal DCG)."""
    hits = (top[:, :, None] == heldout[:, None, :]) & (heldout[:, None, :] >= 0)
    relevant = hits.any(2)                                           # (U, K): rank r holds a held-out item
    gains = 1.0 / np.log2(np.arange(top.shape[1]) + 2)
    out = {}
    for k in cutoffs:
        ideal = gains[:min(heldout.shape[1], k)].sum()
        out[f"hr@{k}"] = float(relevant[:, :k].any(1).mean())
        out[f"ndcg@{k}"] = float((relevant[:, :k] * gains[:k]).sum(1).mean() / ideal)
    return out


def report(cfg, algo: str, agent, env: "InteractionLog") -> dict:
    """The learner against random, most-popular and item-kNN on the held-out items: a table and
    ``results/{algo}_{setting}_heldout.json``."""
    import torch

    from common.io import atomic_save_json
    from common.envs.recsys import unit

    catalog = unit(torch.as_tensor(env.item_embeddings, device=agent.device))

    def learner(users):
        actions = torch.as_tensor(agent.act_batch(env.data.states[users]), device=agent.device)
        return (unit(actions) @ catalog.T).cpu().numpy()

    rows = {algo: env.data.metrics(learner)}
    rows.update({name: env.data.metrics(score) for name, score in env.data.baselines(cfg.seed + 100).items()})
    result = {"users": len(env.data.history), "holdout": int(env.data.heldout.shape[1]), "metrics": rows}
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{algo}_{cfg.setting}_heldout.json"), result)
    names = list(rows[algo])
    print(f"{'recommender':<14}" + "".join(f"{m:>9}" for m in names) + f"   ({result['users']} held-out users, "
          f"last {result['holdout']} items each)")
    for name, row in rows.items():
        print(f"{name:<14}" + "".join(f"{row[m]:>9.4f}" for m in names))
    return result


class InteractionLog(gym.Env):
    """The held-out users of a prepared log as an env: an episode is one user (drawn by the reset
    seed); the observation is the user's last N training items' embeddings, newest first; the action
    a vector in the embedding space; the reward the number of the user's held-out items among the
    ``k`` unseen items most cosine-similar to it; then the episode ends. Built without a log (to
    read its action space), it is a one-dimensional placeholder."""

    metadata = {"render_modes": []}

    def __init__(self, cache: str | None = None, k: int = EVAL_K):
        self.k = k
        self.data = HeldOut(cache) if cache else None
        dim = self.data.embeddings.shape[1] if cache else 1
        width = self.data.history.shape[1] * dim if cache else 1
        self.item_embeddings = self.data.embeddings if cache else np.ones((k, 1), np.float32)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (width,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.user = 0

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if self.data is None:
            raise UserError("InteractionLog-v0 serves a log: give --dataset interactions:FILE")
        self.user = int(self.np_random.integers(len(self.data.history)))
        return self.data.states[self.user].astype(np.float32), {}

    def step(self, action):
        action = np.asarray(action, np.float32).reshape(-1)
        scores = self.item_embeddings @ (action / max(float(np.linalg.norm(action)), 1e-12))
        users = np.array([self.user])
        top = self.data.top(scores[None], users, self.k)[0]
        reward = float(np.isin(top, self.data.heldout[self.user]).sum())
        return self.data.states[self.user].astype(np.float32), reward, True, False, {"recommended": top}
