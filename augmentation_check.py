"""How often SQV's random shift changes the objects of a MinAtar state.

    python augmentation_check.py                      # the five MinAtar games, 5000 states each, pad 1
    python augmentation_check.py --env MinAtar/Breakout-v1 --states 1000 --out check.json
    python augmentation_check.py --env MinAtar/Breakout-v1 --buffer buffers/Default_MinAtar_Breakout-v1_0

A MinAtar state is C binary 10×10 channels, one per object type. The shift (`common.learning.augment`)
replicate-pads the grid by ``--pad`` cells and crops it back at a uniform offset, so an object on
the border the content moves away from is duplicated and one on the border it moves towards is
dropped. For each game this collects ``--states`` states of uniformly random play (or drawn from a
saved buffer), shifts each once with each ``--aug_shift`` (the project's augmentation objects) and
prints, per game and shift, the share of shifted states whose object count (nonzero pixels over all
channels) changes, whose count changes in some channel, whose objects change at all (one dropped or
duplicated, even where the counts cancel), the count's share among the states actually moved
(offset ≠ identity), and the share left in place. Seeded (``--seed``) and deterministic;
``--out FILE`` also writes the rows as JSON. Bad input: one line on stderr, exit code 2.
"""
from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from common.learning.augment import SHIFTS, ObjectPreservingShift, RandomShift, object_counts
from common.errors import Parser, UserError
from common.io import atomic_save_json

GAMES = tuple(f"MinAtar/{game}-v1" for game in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"))
AUGMENTATIONS = {"replicate": RandomShift, "preserve_objects": ObjectPreservingShift}
COLUMNS = {"count": "count changes", "channel_count": "a channel's count changes",
           "objects": "objects dropped or duplicated", "count_moved": "count changes, offset ≠ identity",
           "unshifted": "left in place"}


def random_play_states(env_id: str, n: int, seed: int) -> np.ndarray:
    """(n, C, 10, 10) uint8 states of uniformly random play (episodes back to back; env and actions seeded)."""
    from common.envs.make import make_env

    env = make_env(env_id).env
    env.action_space.seed(seed)
    states = np.empty((n, *env.observation_space.shape), dtype=np.uint8)
    state, _ = env.reset(seed=seed)
    for i in range(n):
        states[i] = state
        state, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            state, _ = env.reset()
    env.close()
    return states


def buffer_states(prefix: str, env_id: str, n: int, seed: int) -> np.ndarray:
    """Up to n states drawn without replacement (seeded) from the saved buffer ``prefix``."""
    from common.data import manifest
    from common.data.buffers import ReplayBuffer
    from common.envs.make import make_env

    info = make_env(env_id)
    info.env.close()
    how = f"python main.py --generate_buffer --env {env_id}"
    manifest.verify(prefix, SimpleNamespace(env=env_id), info, how)  # as main.py checks a buffer it trains on
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(info.state_shape, 1, 1, "cpu", rng, state_dtype=np.uint8)
    buffer.load(prefix, how_to_create=how, mmap=True)
    ind = np.sort(rng.choice(buffer.size, min(n, buffer.size), replace=False))
    states = np.asarray(buffer.state[ind])
    if not np.array_equal(states, states.astype(np.uint8)):  # MinAtar cells are 0 or 1
        raise UserError(f"buffer {prefix} holds states that are not whole numbers in 0-255: not a MinAtar buffer")
    return states.astype(np.uint8)


def translated(states: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Each state moved by its offset with nothing brought in from the border (a zero-padded crop)."""
    b, _, h, w = states.shape
    padded = F.pad(states, (pad,) * 4)
    rows = offsets[:, :1] + torch.arange(h)
    cols = offsets[:, 1:] + torch.arange(w)
    return padded[torch.arange(b)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def measure(states: torch.Tensor, augment, seed: int = 0) -> dict[str, float | None]:
    """Shift (B, C, H, W) ``states`` once with ``augment`` (anything with ``sample(images) → (shifted,
    offsets)`` and ``pad``) and return the share of shifted states whose total object count changes
    (``count``), whose count changes in some channel (``channel_count``), whose objects change at all
    (``objects``), the ``count`` share among those moved (``count_moved``, None if none is) and the
    share left in place (``unshifted``, offset = identity)."""
    torch.manual_seed(seed)
    shifted, offsets = augment.sample(states)
    before, after = object_counts(states), object_counts(shifted)
    count = before.sum(1) != after.sum(1)
    moved = (offsets != augment.pad).any(1)
    intact = translated(states, offsets, augment.pad)
    same_objects = (shifted == intact).flatten(1).all(1) & (object_counts(intact) == before).all(1)
    share = lambda mask: float(mask.float().mean()) if mask.numel() else None
    return {"count": share(count), "channel_count": share((before != after).any(1)), "objects": share(~same_objects),
            "count_moved": share(count[moved]), "unshifted": share(~moved)}


def markdown(rows: list[dict]) -> str:
    percent = lambda x: "—" if x is None else f"{100 * x:.1f}%"
    lines = ["| game | shift | states | " + " | ".join(COLUMNS.values()) + " |",
             "|---|---|---|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append(f"| {row['env']} | {row['shift']} | {row['states']} | "
                     + " | ".join(percent(row[key]) for key in COLUMNS) + " |")
    return "\n".join(lines)


def check(envs: list[str], buffer: str | None) -> None:
    from common.envs.make import IMAGE, env_kind

    for env_id in envs:
        if env_kind(env_id) != IMAGE:
            raise UserError(f"--env {env_id}: not a MinAtar game; give MinAtar ids such as {GAMES[1]}")
    if buffer is not None and len(envs) != 1:
        raise UserError("--buffer holds one game's states; give its env with a single --env")


def main(argv=None) -> int:
    parser = Parser("augmentation_check.py", description=__doc__)
    parser.add_argument("--env", action="append", default=None,
                        help=f"a MinAtar id, repeatable (default: the five games, {', '.join(GAMES)})")
    parser.add_argument("--states", type=int, default=5000, help="states per game")
    parser.add_argument("--pad", type=int, default=1, help="padding of the shift in cells (SQV's MinAtar default 1)")
    parser.add_argument("--aug_shift", action="append", choices=SHIFTS, default=None,
                        help="the shift(s) to measure, repeatable (default: both)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the play (env and actions) and of the shifts")
    parser.add_argument("--buffer", type=str, default=None, metavar="PREFIX",
                        help="draw the states from this saved buffer (files PREFIX_state.npy, ...) instead of "
                             "random play; needs a single --env")
    parser.add_argument("--out", type=str, default=None, metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.states <= 0:
        parser.error(f"--states must be positive, got {args.states}")
    if args.states > 10**7:
        parser.error(f"--states {args.states}: at most 1e7 per game")
    if not 0 < args.pad < 10:
        parser.error(f"--pad must be between 1 and 9 (a MinAtar state is 10 × 10 cells), got {args.pad}")
    if args.out and (os.path.isdir(args.out) or not os.path.isdir(os.path.dirname(os.path.abspath(args.out)))):
        parser.error(f"--out {args.out}: not a file in an existing folder")
    envs, shifts = args.env or list(GAMES), args.aug_shift or list(SHIFTS)
    try:
        check(envs, args.buffer)
        rows = []
        for env_id in envs:
            if args.buffer is None:
                states = random_play_states(env_id, args.states, args.seed)
            else:
                states = buffer_states(args.buffer, env_id, args.states, args.seed)
            states = torch.from_numpy(states)
            for name in shifts:
                result = measure(states, AUGMENTATIONS[name](args.pad), args.seed)
                rows.append({"env": env_id, "shift": name, "pad": args.pad, "states": len(states),
                             "source": args.buffer or f"random play, seed {args.seed}", **result})
        print(markdown(rows))
        if args.out:
            try:
                atomic_save_json(args.out, rows)
            except OSError as err:
                raise UserError(f"--out {args.out}: cannot write ({err.strerror})") from None
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
