"""The frame chunk files of a frame-stacked buffer (reference format): rows [0, n] of the frames, the
last one padding, in runs of ``chunk`` rows, each run in ``{prefix}_state_{end}.npy`` (rows [start, end)).
`MappedFrames` reads them memory-mapped; `ChunkWriter` writes them in place by row."""
from __future__ import annotations

import io
import os

import numpy as np
import torch


def chunk_path(prefix: str, end: int) -> str:
    return f"{prefix}_state_{end}.npy"


def chunk_ranges(n: int, chunk: int) -> list[tuple[int, int]]:
    """(start, end) of every chunk file written for ``n`` stored rows (rows [0, n])."""
    return [(start, min(start + chunk, n + 1)) for start in range(0, n + 1, chunk)]


def stored_chunks(n: int, chunk: int) -> list[tuple[int, int]]:
    """The chunks holding stored rows, which loading reads (not a last one of padding alone)."""
    return [(start, end) for start, end in chunk_ranges(n, chunk) if start < n] if chunk > 0 else []


class MappedFrames:
    """The frames of a saved frame-stacked buffer left in its chunk files, memory-mapped read-only
    (``--mmap``): several runs on one machine share one copy in the page cache. Indexing with a
    tensor of row numbers gathers them (one NumPy gather per chunk file, not per sample)."""

    def __init__(self, chunks: list[np.ndarray], chunk: int, size: int):
        self.chunks, self.chunk = chunks, chunk
        self.shape = (size, *chunks[0].shape[1:])
        self.device = torch.device("cpu")

    def index_select(self, dim: int, rows: torch.Tensor) -> torch.Tensor:
        assert dim == 0
        rows = rows.numpy()
        out = np.empty((*rows.shape, *self.shape[1:]), dtype=np.uint8)
        which = rows // self.chunk
        for c in np.unique(which):
            sel = which == c
            out[sel] = self.chunks[c][rows[sel] - c * self.chunk]
        return torch.from_numpy(out)


class ChunkWriter:
    """The chunk files of ``n`` rows written in place by row: a block of rows goes straight to its
    offsets, so converting never holds more than one block. Written under temporary names, renamed by
    `finish`."""

    def __init__(self):
        self.files: list[tuple[str, str, int, int]] = []  # (path, temporary path, header bytes, descriptor)

    def open(self, prefix: str, n: int, frame_shape: tuple, chunk: int) -> None:
        self.row_bytes = int(np.prod(frame_shape))
        self.chunk = chunk
        for start, end in chunk_ranges(n, chunk):
            path = chunk_path(prefix, end)
            tmp = f"{os.path.dirname(path) or '.'}/.{os.path.basename(path)}.tmp"
            header = u8_header((end - start, *frame_shape))
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


def u8_header(shape: tuple) -> bytes:
    """The .npy header of a C-ordered uint8 array of ``shape``."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    return out.getvalue()
