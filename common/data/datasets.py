"""Datasets in the field's formats: `--dataset dqn_replay:DIR`, `d4rl:FILE.hdf5`, `minari:DATASET_ID`,
`interactions:FILE`, and `--export_minari` (README, "Bring your own data").

- **DQN Replay** (Dopamine's checkpoints) is converted once into a frame-stacked buffer
  (`common.data.dqn_replay`; its entry points are importable from here too).
- **D4RL HDF5** and **Minari** datasets become whole-transition buffers in memory (here).
- **Logged interactions** become a cached buffer for the recommender (`common.data.interactions`).
"""
from __future__ import annotations

import os
import shutil
import warnings

import numpy as np

from common.data.buffers import ReplayBuffer
from common.data.dqn_replay import convert_dqn_replay, parse_ckpts, prepare_dqn_replay
from common.errors import UserError

__all__ = ["FORMATS", "parse", "parse_ckpts", "convert_dqn_replay", "prepare_dqn_replay", "fill", "read_d4rl",
           "as_float32", "read_minari", "export_minari"]

FORMATS = ("dqn_replay", "d4rl", "minari", "interactions")


def parse(spec: str) -> tuple[str, str]:
    """``dqn_replay:DIR`` → ("dqn_replay", "DIR"); a clear error for anything else."""
    kind, sep, location = spec.partition(":")
    if not sep or kind not in FORMATS or not location:
        raise UserError(f"--dataset {spec}: expected one of {', '.join(f + ':...' for f in FORMATS)} "
                        "(e.g. dqn_replay:/data/Pong/1/replay_logs, d4rl:hopper-medium.hdf5, minari:D4RL/door/human-v2)")
    return kind, location


# --- D4RL and Minari: whole transitions ------------------------------------------------------------
def fill(buffer: ReplayBuffer, cfg, info) -> str:
    """Fill a whole-transition buffer from ``--dataset d4rl:FILE`` or ``minari:ID``; returns a label."""
    kind, location = parse(cfg.dataset)
    if not isinstance(buffer, ReplayBuffer):
        raise UserError(f"--dataset {kind} gives whole transitions of vector or MinAtar states; {cfg.env} uses "
                        "Atari frame stacks (use --dataset dqn_replay:DIR)")
    columns = read_d4rl(location) if kind == "d4rl" else read_minari(location)
    check_columns(columns, buffer, cfg, info)
    buffer.replace(*columns)
    return f"{kind}:{location}"


def check_columns(columns: tuple, buffer: ReplayBuffer, cfg, info) -> None:
    """Refuse a dataset whose observations or actions do not fit ``buffer`` and this env."""
    state, action = columns[0], columns[1]
    if state.shape[1:] != buffer.state_shape:
        raise UserError(f"--dataset {cfg.dataset}: observations of shape {state.shape[1:]}, but {cfg.env} has "
                        f"{buffer.state_shape}: was it recorded on another env?")
    if len(state) == 0:
        raise UserError(f"--dataset {cfg.dataset} holds no usable transition")
    if int(np.prod(action.shape[1:])) != int(np.prod(buffer.action_shape)):
        raise UserError(f"--dataset {cfg.dataset}: actions of shape {action.shape[1:]}, but {cfg.env} takes "
                        f"{buffer.action_shape}: was it recorded on another env?")
    if buffer.discrete:
        check_discrete(action, cfg, info)


def check_discrete(action: np.ndarray, cfg, info) -> None:
    """Refuse continuous actions, or indices outside this env's action space."""
    kind, location = parse(cfg.dataset)
    if not (np.issubdtype(action.dtype, np.integer) or np.array_equal(action, np.round(action))):
        raise UserError(f"--dataset {cfg.dataset} has continuous actions, but {cfg.env} has discrete ones")
    count = getattr(info.action_space, "n", None)
    if count is not None and (action.min() < 0 or action.max() >= count):
        source = f"D4RL file {location}" if kind == "d4rl" else f"Minari dataset {location}"
        wrong = action.min() if action.min() < 0 else action.max()
        raise UserError(f"{source}: 'actions' holds action {int(wrong)}, but {cfg.env} has {count} actions "
                        f"(0 to {count - 1}): was it recorded on another env?")


def read_d4rl(path: str):
    """(s, a, s', r, not_done) from a D4RL-style HDF5 file. Timeouts are not terminals: without
    ``next_observations`` s' is the next row of the same episode, and a transition whose episode
    ends by timeout (or by the file's end) without a terminal is dropped, having no s'."""
    try:
        import h5py
    except ImportError:
        raise UserError("--dataset d4rl needs h5py: pip install -e '.[datasets]'") from None
    if not os.path.isfile(path):
        raise UserError(f"--dataset d4rl:{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("observations", "actions", "rewards", "terminals") if k not in f]
            if missing:
                raise UserError(f"D4RL file {path} has no '{missing[0]}' dataset (keys: {', '.join(sorted(f.keys()))})")
            data = {k: f[k][()] for k in ("observations", "actions", "rewards", "terminals", "timeouts",
                                           "next_observations") if k in f}
    except OSError as err:
        raise UserError(f"D4RL file {path} cannot be read as HDF5 ({str(err).splitlines()[0][:80]})") from None
    source = f"D4RL file {path}"
    for key, value in data.items():
        if np.ndim(value) == 0:
            raise UserError(f"{source}: '{key}' is a scalar; expected one row per transition")
    n = len(data["observations"])
    for key, value in data.items():
        if len(value) != n:
            raise UserError(f"{source}: '{key}' has {len(value)} rows but 'observations' has {n}")
    obs = as_float32(source, "observations", data["observations"])
    actions = as_float32(source, "actions", data["actions"]).reshape(n, -1)
    rewards = as_float32(source, "rewards", data["rewards"]).reshape(n)
    terminal = data["terminals"].astype(bool).reshape(n)
    timeout = data.get("timeouts", np.zeros(n, bool)).astype(bool).reshape(n) & ~terminal
    if "next_observations" in data:
        next_obs = as_float32(source, "next_observations", data["next_observations"])
        keep = np.arange(n)
    else:
        following = np.concatenate([obs[1:], obs[-1:]])
        has_next = ~timeout & (np.arange(n) < n - 1)  # the next row continues this episode
        keep = np.flatnonzero(terminal | has_next)
        next_obs = np.where(terminal[:, None], obs, following)  # a terminal's s' is never used (not_done 0)
    return obs[keep], actions[keep], next_obs[keep], rewards[keep], 1.0 - terminal[keep].astype(np.float32)


def as_float32(source: str, key: str, values: np.ndarray) -> np.ndarray:
    """A dataset's column as float32, refused (naming the file, the key and the first bad row) when
    it is not numbers or holds NaN, inf or a value beyond float32's range."""
    if values.dtype.kind not in "biuf":
        raise UserError(f"{source}: '{key}' holds {values.dtype} values; expected numbers")
    with np.errstate(over="ignore"):
        values = values.astype(np.float32)
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        raise UserError(f"{source}: '{key}' holds NaN or inf (or values beyond float32's range) at row "
                        f"{int(np.argmax(bad))} ({int(bad.sum())} rows in all); repair or drop those rows")
    return values


def read_minari(dataset_id: str):
    """(s, a, s', r, not_done) from a locally installed Minari dataset (nothing is downloaded)."""
    try:
        import minari
    except ImportError:
        raise UserError("--dataset minari needs minari: pip install -e '.[datasets]'") from None
    try:
        dataset = minari.load_dataset(dataset_id, download=False)
    except Exception as err:  # minari raises several kinds for a dataset it cannot find or read
        raise UserError(f"--dataset minari:{dataset_id}: cannot load it locally ({str(err).splitlines()[0][:100]}); "
                        "see `minari list local`") from None
    columns = [[], [], [], [], []]
    for episode in dataset.iterate_episodes():
        obs = episode.observations
        if isinstance(obs, dict):
            raise UserError(f"Minari dataset {dataset_id} has dict observations; only array observations are supported")
        steps = len(episode.actions)
        for column, value in zip(columns, (obs[:-1], episode.actions, obs[1:], episode.rewards,
                                           1.0 - np.asarray(episode.terminations, np.float32))):
            column.append(np.asarray(value)[:steps])
    if not columns[0]:
        raise UserError(f"Minari dataset {dataset_id} holds no episodes")
    state, action, next_state, reward, not_done = (np.concatenate(c) for c in columns)
    source = f"Minari dataset {dataset_id}"
    state, next_state = as_float32(source, "observations", state), as_float32(source, "observations", next_state)
    as_float32(source, "actions", action)  # checked; kept in its own dtype (discrete actions stay integers)
    return state, action, next_state, as_float32(source, "rewards", reward), not_done.astype(np.float32)


def export_minari(buffer: ReplayBuffer, dataset_id: str, env_id: str) -> int:
    """Write a whole-transition buffer as a Minari dataset; returns the number of episodes."""
    try:
        import minari
        from minari.storage import get_dataset_path
    except ImportError:
        raise UserError("--export_minari needs minari: pip install -e '.[datasets]'") from None
    episodes = minari_episodes(buffer)
    # minari makes the dataset's folder before it checks the id: a failed export removes what it made
    top = os.path.join(get_dataset_path(), dataset_id.split("/")[0])
    existed = os.path.exists(top)
    with warnings.catch_warnings():  # minari asks for author, e-mail and code links: none to give here
        warnings.simplefilter("ignore", UserWarning)
        try:
            minari.create_dataset_from_buffers(dataset_id, episodes, env=env_id,
                                               algorithm_name="BCQ/SQV buffer generation",
                                               description=f"exported from this project's buffer of {env_id}")
        except BaseException as err:
            if not existed:
                shutil.rmtree(top, ignore_errors=True)
            if isinstance(err, (ValueError, TypeError)):  # an existing or malformed id
                raise UserError(f"--export_minari {dataset_id}: {str(err).splitlines()[0][:160]} (a Minari id is "
                                "[namespace/]name-vN and must not exist yet)") from None
            raise
    return len(episodes)


def minari_episodes(buffer: ReplayBuffer) -> list:
    """The buffer's rows as Minari episodes. An episode ends at a terminal, where s' of a row is not
    the next row's s (a time limit or another env's episode), or at the buffer's end."""
    from minari.data_collector import EpisodeBuffer

    state, action, next_state, reward, not_done = buffer.columns()
    n = len(state)
    ends = not_done[:, 0] == 0
    if n > 1:
        ends[:-1] |= np.any(next_state[:-1].reshape(n - 1, -1) != state[1:].reshape(n - 1, -1), axis=1)
    ends[-1] = True
    episodes, start = [], 0
    for end in np.flatnonzero(ends):
        rows = slice(start, end + 1)
        terminal = bool(not_done[end, 0] == 0)
        actions = action[rows]
        if actions.shape[1:] == (1,) and np.issubdtype(actions.dtype, np.integer):
            actions = actions[:, 0]
        steps = end + 1 - start
        episodes.append(EpisodeBuffer(
            id=len(episodes), observations=list(np.concatenate([state[rows], next_state[end:end + 1]])),
            actions=list(actions), rewards=list(reward[rows, 0].astype(float)),
            terminations=[False] * (steps - 1) + [terminal], truncations=[False] * (steps - 1) + [not terminal]))
        start = end + 1
    return episodes
