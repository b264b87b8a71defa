"""Recommendation from logged interactions: ``--dataset interactions:FILE`` with ``--env InteractionLog-v0``.

The log is read and split per user by `common.data.interaction_log` (the last ``--rec_holdout`` k items
of each user held out) and evaluated on the held-out items by `common.data.heldout`; this module builds
the cached buffer between them. Item embeddings are learned from the training part only
(implicit-feedback ALS from the ``implicit`` package: the field's standard, fast on CPU, no hand-written
solver), unit-normalized; items never seen in training are not in the catalog. Transitions, per user in
time order from the N-th training item on (N = ``--rec_history``): state = the embeddings of the last N
consumed items, newest first (as the simulator's); action = the next item's embedding; reward from the
log (``--rec_reward``); not_done = 0 at the user's last training interaction.
"""
from __future__ import annotations

import hashlib
import json
import os

import gymnasium as gym
import numpy as np

from common.data import manifest
from common.data.buffers import ReplayBuffer
from common.data.heldout import CUTOFFS, EVAL_K, HeldOut, InteractionLog, ranking_metrics, report
from common.data.interaction_log import Log, Split, read_log, split
from common.errors import UserError
from common.io import atomic_save_npy, read_npy_flag, run_lock

__all__ = ["CUTOFFS", "EVAL_K", "HeldOut", "InteractionLog", "ranking_metrics", "report", "Log", "Split", "read_log",
           "split", "learn_embeddings", "own_embeddings", "transitions", "cache_prefix", "prepare", "build"]


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
    """Read and split the log at ``path``, embed its items and write the buffer, the embeddings and the
    split at ``prefix`` (the manifest last)."""
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
    buffer = ReplayBuffer(state.shape[1:], 1, 1, "cpu", np.random.default_rng(0),
                          action_shape=action.shape[1:], action_dtype=np.float32)
    buffer.replace(state, action, next_state, reward, not_done)
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
