"""Datasets in the field's formats: `--dataset dqn_replay:DIR`, `d4rl:FILE.hdf5`, `minari:DATASET_ID`,
and `--export_minari` (README, "Bring your own data").

- **DQN Replay** (Agarwal et al. 2020; Dopamine's ``OutOfGraphReplayBuffer`` checkpoints): converted
  once, streaming, into this project's frame-stacked buffer format under ``buffers/`` with a manifest;
  later runs find the manifest and memory-map the frames. Dopamine's layout is kept row for row
  (each checkpoint in chronological order): its ``stack - 1`` zero frames after every terminal give
  the zero padding at episode starts, so no row is flagged as an episode start, and a per-row
  ``valid`` flag carries Dopamine's own sampling rule (its invalid range around the write cursor, no
  terminal inside a stack, the padding rows of an unfilled buffer).
- **D4RL HDF5** and **Minari** datasets become whole-transition buffers in memory.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib

import numpy as np

from common.errors import UserError
from common.io import read_header, read_into

FORMATS = ("dqn_replay", "d4rl", "minari", "interactions")
DOPAMINE_STACK = 4  # frames per state in the DQN Replay Dataset
STORE = ("observation", "action", "reward", "terminal")


def parse(spec: str) -> tuple[str, str]:
    """``dqn_replay:DIR`` → ("dqn_replay", "DIR"); a clear error for anything else."""
    kind, sep, location = spec.partition(":")
    if not sep or kind not in FORMATS or not location:
        raise UserError(f"--dataset {spec}: expected one of {', '.join(f + ':...' for f in FORMATS)} "
                        "(e.g. dqn_replay:/data/Pong/1/replay_logs, d4rl:hopper-medium.hdf5, minari:D4RL/door/human-v2)")
    return kind, location


def parse_ckpts(text: str | None) -> list[int]:
    if text is None:
        raise UserError("--dataset dqn_replay:DIR needs --ckpts, e.g. --ckpts 49,50 (Dopamine's checkpoint numbers)")
    try:
        ckpts = [int(c) for c in re.split(r"[,\s]+", text.strip()) if c]
    except ValueError:
        raise UserError(f"--ckpts {text}: expected comma-separated checkpoint numbers, e.g. 49,50") from None
    if not ckpts or min(ckpts) < 0 or len(set(ckpts)) != len(ckpts):
        raise UserError(f"--ckpts {text}: expected distinct non-negative checkpoint numbers, e.g. 49,50")
    return ckpts


# --- DQN Replay ---------------------------------------------------------------------------------
def dopamine_path(directory: str, name: str, ckpt: int) -> str:
    prefix = "$store$_" if name in STORE else ""
    return os.path.join(directory, f"{prefix}{name}_ckpt.{ckpt}.gz")


class GzipNpy:
    """A gzip-wrapped ``np.save`` read as a stream: the header first, then rows in blocks, so a 7 GB
    observation array is never held in memory (only one block is)."""

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise UserError(f"DQN Replay file {path} is missing (expected Dopamine's $store$_{{observation,action,"
                            f"reward,terminal}}_ckpt.N.gz, add_count_ckpt.N.gz and invalid_range_ckpt.N.gz)")
        self.path = path
        self.file = gzip.open(path, "rb")
        try:
            shape, fortran, dtype = read_header(self.file)
        except (ValueError, OSError, EOFError, zlib.error) as err:
            self.close()
            raise damaged(path, err) from None
        if fortran or dtype.hasobject:
            self.close()
            raise UserError(f"DQN Replay file {path} holds a {'Fortran-ordered' if fortran else 'pickled'} array; "
                            "expected a plain np.save of a C-ordered array")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize

    def blocks(self, rows: int):
        """Yield (first row, array of up to ``rows`` rows) until the array's end."""
        start = 0
        while start < self.shape[0]:
            count = min(rows, self.shape[0] - start)
            block = np.empty((count, *self.shape[1:]), self.dtype)
            self.read_into(block)
            yield start, block
            start += count

    def read_into(self, out: np.ndarray) -> None:
        try:
            read_into(self.file, out, self.path)
        except (OSError, EOFError, zlib.error) as err:
            raise damaged(self.path, err) from None

    def read(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        if out.size:
            self.read_into(out)
        return out

    def close(self) -> None:
        self.file.close()


def damaged(path: str, err: Exception) -> UserError:
    return UserError(f"DQN Replay file {path} is truncated or corrupted ({str(err).splitlines()[0][:80]}); "
                     "download or copy it again")


def read_small(directory: str, name: str, ckpt: int) -> np.ndarray:
    stream = GzipNpy(dopamine_path(directory, name, ckpt))
    try:
        return stream.read()
    finally:
        stream.close()


def dopamine_order_and_valid(terminal: np.ndarray, add_count: int, invalid_range: np.ndarray,
                             stack: int) -> tuple[np.ndarray, np.ndarray]:
    """The Dopamine indices of a checkpoint in chronological order (oldest first; an unfilled buffer
    keeps its first ``add_count`` rows) and, per index, whether Dopamine would sample it
    (``OutOfGraphReplayBuffer.is_valid_transition`` with update horizon 1)."""
    capacity = len(terminal)
    full = add_count >= capacity
    cursor = add_count % capacity
    index = np.arange(capacity)
    valid = np.ones(capacity, bool)
    if not full:
        valid &= (index >= stack - 1) & (index < cursor - 1)
    valid[np.asarray(invalid_range, np.int64) % capacity] = False
    for back in range(1, stack):  # a terminal among the frames before the newest ends the stack's episode
        valid &= terminal[(index - back) % capacity] == 0
    order = np.roll(index, -cursor) if full else index[:add_count]
    return order, valid


def convert_dqn_replay(directory: str, ckpts: list[int], prefix: str, frame_shape: tuple, stack: int,
                       block_rows: int = 10_000, chunk: int = 100_000) -> dict:
    """Write checkpoints ``ckpts`` of a DQN Replay directory as one frame-stacked buffer at ``prefix``
    (chronological per checkpoint, concatenated); returns what the manifest records."""
    segments = []
    for ckpt in ckpts:
        arrays = {name: read_small(directory, name, ckpt) for name in ("action", "reward", "terminal")}
        capacity = len(arrays["terminal"])
        for name, array in arrays.items():
            if array.ndim != 1 or len(array) != capacity:
                raise UserError(f"DQN Replay file {dopamine_path(directory, name, ckpt)} has shape {array.shape}; "
                                f"expected ({capacity},) like the checkpoint's terminals")
        add_count = int(read_small(directory, "add_count", ckpt))
        invalid_range = read_small(directory, "invalid_range", ckpt).reshape(-1)
        order, valid = dopamine_order_and_valid(arrays["terminal"], add_count, invalid_range, stack)
        segments.append((ckpt, arrays, order, valid))
    n = sum(len(order) for _, _, order, _ in segments)
    if n < 2:
        raise UserError(f"DQN Replay checkpoints {ckpts} in {directory} hold {n} transitions; nothing to train on")
    if not any(valid[order].any() for _, _, order, valid in segments):
        raise UserError(f"DQN Replay checkpoints {ckpts} in {directory} hold no transition Dopamine would sample")
    from common.data.manifest import check_free_space

    row_bytes = int(np.prod(frame_shape)) + 8 + 4 + 4 + 1 + 1
    check_free_space(os.path.dirname(prefix) or ".", n * row_bytes, f"converting {n} DQN Replay transitions")
    files = {name: np.empty(n, dtype) for name, dtype in
             (("action", np.int64), ("reward", np.float32), ("not_done", np.float32), ("valid", np.uint8))}
    frames = ChunkWriter()
    offset = 0
    try:
        frames.open(prefix, n, frame_shape, chunk)
        for ckpt, arrays, order, valid in segments:
            rows = slice(offset, offset + len(order))
            files["action"][rows] = arrays["action"][order]
            files["reward"][rows] = np.clip(arrays["reward"][order], -1.0, 1.0)  # as our Atari buffers store it
            files["not_done"][rows] = 1.0 - arrays["terminal"][order]
            files["valid"][rows] = valid[order]
            destination = np.full(len(arrays["terminal"]), -1, np.int64)
            destination[order] = np.arange(offset, offset + len(order))
            stream = GzipNpy(dopamine_path(directory, "observation", ckpt))
            try:
                expected = (len(arrays["terminal"]), *frame_shape)
                if stream.shape != expected or stream.dtype != np.uint8:
                    raise UserError(f"DQN Replay file {stream.path} holds {stream.dtype} {stream.shape}; expected uint8 "
                                    f"{expected} (Atari frames of --frame_size {frame_shape[-1]})")
                for start, block in stream.blocks(block_rows):
                    frames.scatter(destination[start:start + len(block)], block)
            finally:
                stream.close()
            offset += len(order)
        paths = frames.finish()
    except OSError as err:  # the disk filled up or went away while writing
        frames.abort()
        raise UserError(f"writing the converted buffer {prefix}_* failed ({err.strerror or err}); "
                        "free some space or choose another --out_dir") from None
    except BaseException:
        frames.abort()
        raise
    from common.io import atomic_save_npy

    paths += [atomic_save_npy(f"{prefix}_{name}.npy", files[name].reshape(n, 1) if name != "valid" else files[name])
              for name in files]
    paths.append(atomic_save_npy(f"{prefix}_first_timestep.npy", np.zeros(n, np.uint8)))  # zero frames pad instead
    paths.append(atomic_save_npy(f"{prefix}_replay_info.npy", np.array([n, chunk])))
    return {"paths": paths, "size": n, "ptr": n}


class ChunkWriter:
    """The frame chunk files of a buffer (``{prefix}_state_{end}.npy``, rows [0, n], the last one the
    format's padding row) written in place by row: a block of rows goes straight to its offsets, so
    converting never holds more than one block. Written under temporary names, renamed by `finish`."""

    def __init__(self):
        self.files: list[tuple[str, str, int, int]] = []  # (path, temporary path, header bytes, descriptor)

    def open(self, prefix: str, n: int, frame_shape: tuple, chunk: int) -> None:
        self.row_bytes = int(np.prod(frame_shape))
        self.chunk = chunk
        for start in range(0, n + 1, chunk):
            end = min(start + chunk, n + 1)
            path = f"{prefix}_state_{end}.npy"
            tmp = f"{os.path.dirname(path) or '.'}/.{os.path.basename(path)}.tmp"
            header = _npy_header((end - start, *frame_shape))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            self.files.append((path, tmp, len(header), fd))
            os.write(fd, header)
            os.ftruncate(fd, len(header) + (end - start) * self.row_bytes)  # zeros, sparse until written

    def scatter(self, rows: np.ndarray, block: np.ndarray) -> None:
        """Write ``block[i]`` to buffer row ``rows[i]`` (rows < 0 are skipped), run by run."""
        keep = np.flatnonzero(rows >= 0)
        if keep.size == 0:
            return
        # runs of consecutive destination rows within one chunk file: one pwrite each
        breaks = np.flatnonzero((np.diff(keep) != 1) | (np.diff(rows[keep]) != 1)
                                | (np.diff(rows[keep] // self.chunk) != 0)) + 1
        for run in np.split(keep, breaks):
            first = int(rows[run[0]])
            path, tmp, header, fd = self.files[first // self.chunk]
            os.pwrite(fd, np.ascontiguousarray(block[run[0]:run[-1] + 1]).tobytes(),
                      header + (first % self.chunk) * self.row_bytes)

    def finish(self) -> list[str]:
        for _, _, _, fd in self.files:
            os.fsync(fd)
        for _, _, _, fd in self.files:
            os.close(fd)
        self.files = [(path, tmp, header, -1) for path, tmp, header, _ in self.files]
        for path, tmp, _, _ in self.files:
            os.replace(tmp, path)
        paths = [path for path, _, _, _ in self.files]
        self.files = []
        return paths

    def abort(self) -> None:
        """Close and remove whatever was written (renamed chunk files too: the manifest marker stays)."""
        for path, tmp, _, fd in self.files:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
            for name in (tmp, path):
                if os.path.exists(name):
                    os.remove(name)
        self.files = []


def _npy_header(shape: tuple) -> bytes:
    import io

    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    return out.getvalue()


def dqn_replay_prefix(cfg, directory: str, ckpts: list[int]) -> str:
    """Where the converted checkpoints are cached: one name per source folder, env and checkpoints."""
    import hashlib

    tag = hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:8]
    name = f"DQNReplay_{cfg.env.replace('/', '_')}_{tag}_ckpt{'-'.join(map(str, ckpts))}"
    return os.path.join(cfg.out_dir, "buffers", name)


def source_record(directory: str, ckpts: list[int]) -> dict:
    """Size and modification time of every source file: a changed source invalidates the cache."""
    record = {}
    for ckpt in ckpts:
        for name in (*STORE, "add_count", "invalid_range"):
            path = dopamine_path(directory, name, ckpt)
            if not os.path.isfile(path):
                GzipNpy(path)  # raises the missing-file error
            stat = os.stat(path)
            record[os.path.basename(path)] = [stat.st_size, int(stat.st_mtime)]
    return {"directory": os.path.abspath(directory), "ckpts": ckpts, "files": record}


def prepare_dqn_replay(cfg, info, directory: str) -> str:
    """Convert the checkpoints once (streaming) and return the cached buffer's prefix."""
    import json
    import time

    from common.data import manifest
    from common.envs.make import ATARI

    if info.kind != ATARI:
        raise UserError(f"--dataset dqn_replay holds Atari frames; {cfg.env} is not an Atari env "
                        "(use the game's id, e.g. PongNoFrameskip-v4)")
    if not os.path.isdir(directory):
        raise UserError(f"--dataset dqn_replay:{directory}: no such folder (expected Dopamine's replay_logs folder)")
    ckpts = parse_ckpts(getattr(cfg, "ckpts", None))
    if cfg.state_history != DOPAMINE_STACK:
        raise UserError(f"--dataset dqn_replay: the DQN Replay Dataset was written with stacks of {DOPAMINE_STACK} "
                        f"frames (its zero padding is {DOPAMINE_STACK - 1} frames); drop --state_history {cfg.state_history}")
    prefix = dqn_replay_prefix(cfg, directory, ckpts)
    source = source_record(directory, ckpts)
    try:
        with open(manifest.manifest_path(prefix)) as f:
            if json.load(f).get("source") == source and not os.path.exists(manifest.marker_path(prefix)):
                print(f"[dataset] using the converted DQN Replay buffer {prefix}")
                return prefix
    except (OSError, ValueError):
        pass
    frame_shape = (cfg.frame_size, cfg.frame_size)
    print(f"[dataset] converting DQN Replay checkpoints {ckpts} of {directory} into {prefix}_* (once)")
    start = time.time()
    manifest.begin(prefix)
    result = convert_dqn_replay(directory, ckpts, prefix, frame_shape, cfg.state_history)
    from types import SimpleNamespace

    manifest.finish(prefix, result["paths"], cfg, info,
                    SimpleNamespace(size=result["size"], ptr=result["ptr"], state=np.empty(0, np.uint8)),
                    extra={"source": source})
    print(f"[dataset] {result['size']} transitions converted in {time.time() - start:.0f} s")
    return prefix


# --- D4RL and Minari: whole transitions ------------------------------------------------------------
def fill(buffer, cfg, info) -> str:
    """Fill a whole-transition buffer from ``--dataset d4rl:FILE`` or ``minari:ID``; returns a label."""
    kind, location = parse(cfg.dataset)
    if not hasattr(buffer, "next_state"):
        raise UserError(f"--dataset {kind} gives whole transitions of vector or MinAtar states; {cfg.env} uses "
                        "Atari frame stacks (use --dataset dqn_replay:DIR)")
    columns = read_d4rl(location) if kind == "d4rl" else read_minari(location)
    state, action, next_state, reward, not_done = columns
    want_state, want_action = buffer.state.shape[1:], buffer.action.shape[1:]
    if state.shape[1:] != want_state:
        raise UserError(f"--dataset {cfg.dataset}: observations of shape {state.shape[1:]}, but {cfg.env} has "
                        f"{want_state}: was it recorded on another env?")
    if len(state) == 0:
        raise UserError(f"--dataset {cfg.dataset} holds no usable transition")
    per_row = int(np.prod(action.shape[1:]))
    if per_row != int(np.prod(want_action)):
        raise UserError(f"--dataset {cfg.dataset}: actions of shape {action.shape[1:]}, but {cfg.env} takes "
                        f"{want_action}: was it recorded on another env?")
    discrete = np.issubdtype(buffer.action.dtype, np.integer)
    if discrete and not (np.issubdtype(action.dtype, np.integer) or np.array_equal(action, np.round(action))):
        raise UserError(f"--dataset {cfg.dataset} has continuous actions, but {cfg.env} has discrete ones")
    count = getattr(info.action_space, "n", None)
    if discrete and count is not None and (action.min() < 0 or action.max() >= count):
        source = f"D4RL file {location}" if kind == "d4rl" else f"Minari dataset {location}"
        wrong = action.min() if action.min() < 0 else action.max()
        raise UserError(f"{source}: 'actions' holds action {int(wrong)}, but {cfg.env} has {count} actions "
                        f"(0 to {count - 1}): was it recorded on another env?")
    action = action.reshape(len(action), *want_action)
    buffer.__init__(want_state, len(state), buffer.batch_size, buffer.device, buffer.rng, buffer.state.dtype,
                    want_action, buffer.action.dtype)
    buffer.state[:], buffer.action[:], buffer.next_state[:] = state, action, next_state
    buffer.reward[:, 0], buffer.not_done[:, 0] = reward, not_done
    buffer.size, buffer.ptr = len(state), 0
    return f"{kind}:{location}"


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


def export_minari(buffer, dataset_id: str, env_id: str) -> int:
    """Write a whole-transition buffer as a Minari dataset; returns the number of episodes. An episode
    ends at a terminal, where s' of a row is not the next row's s (a time limit or another env's
    episode), or at the buffer's end."""
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError:
        raise UserError("--export_minari needs minari: pip install -e '.[datasets]'") from None
    n = buffer.size
    state, next_state = buffer.state[:n], buffer.next_state[:n]
    ends = buffer.not_done[:n, 0] == 0
    if n > 1:
        ends[:-1] |= np.any(next_state[:-1].reshape(n - 1, -1) != state[1:].reshape(n - 1, -1), axis=1)
    ends[-1] = True
    episodes, start = [], 0
    for end in np.flatnonzero(ends):
        rows = slice(start, end + 1)
        terminal = bool(buffer.not_done[end, 0] == 0)
        actions = buffer.action[rows]
        if actions.shape[1:] == (1,) and np.issubdtype(actions.dtype, np.integer):
            actions = actions[:, 0]
        steps = end + 1 - start
        episodes.append(EpisodeBuffer(
            id=len(episodes), observations=list(np.concatenate([state[rows], next_state[end:end + 1]])),
            actions=list(actions), rewards=list(buffer.reward[rows, 0].astype(float)),
            terminations=[False] * (steps - 1) + [terminal], truncations=[False] * (steps - 1) + [not terminal]))
        start = end + 1
    import warnings

    import shutil

    from minari.storage import get_dataset_path

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
