"""Image batches streamed from an HDF5 file made by `blogml data prepare` (NumPy, any backend).

Training batches follow the order contract of :class:`blogml.data.batches.ArrayBatches`
(pass `p` visits the images in `numpy.random.default_rng([seed, p]).permutation(n)`, so
resuming needs only the global step), and are read here from disk one batch at a time: a
split is never loaded whole. A background thread reads the next batches while the model
trains on the current one.

Reading: each image is one HDF5 chunk, and a batch is read row by row in increasing index
order, then put back in the permutation's order. Measured on 64x64 images (random batches
of 64 from 50k images, warm page cache): ~125k images/s; with 64-image chunks ~23k (every
row pulls its whole chunk through the chunk cache); h5py fancy indexing `dataset[indices]`
~1.6k, whatever the chunks (it builds one selection out of many hyperslabs).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from blogml.data.batches import ArrayBatches, eval_batches
from blogml.errors import BlogmlError

Transform = Callable[[np.ndarray], np.ndarray]


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 -> float32 in [-1, 1] (what a tanh decoder outputs)."""
    return images.astype(np.float32) / 127.5 - 1.0


def open_cache(path: str | Path) -> h5py.File:
    """`path` opened read-only; BlogmlError naming it and the fix when it is missing or not
    HDF5 (h5py's own error names neither the config key nor the command that makes one)."""
    path = Path(path)
    if not path.is_file():
        what = "a folder, not an HDF5 file" if path.is_dir() else "no such file"
        raise BlogmlError(f"{path}: {what}; make it with `blogml data prepare celeba --src DIR "
                          f"--out {path}`")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise BlogmlError(f"{path}: not a readable HDF5 file ({error}); make it again with "
                          f"`blogml data prepare celeba --src DIR --out {path}`") from None


def split_problem(h5: h5py.File, split: str) -> str | None:
    """Why `split` of an open cache cannot be trained or evaluated on (it must hold at
    least one square uint8 (n, H, W, 3) image), or None. Only the metadata is read."""
    dataset = h5.get(split)
    if not isinstance(dataset, h5py.Dataset):
        splits = sorted(k for k, v in h5.items() if isinstance(v, h5py.Dataset))
        return (f"no split {split!r} (it has: {', '.join(splits) or 'none'}); make it with "
                "`blogml data prepare`")
    if dataset.ndim != 4 or dataset.shape[3] != 3 or dataset.dtype != np.uint8:
        return (f"split {split!r} is {dataset.dtype} {dataset.shape}, not uint8 (n, H, W, 3) "
                "images; make it with `blogml data prepare`")
    count, height, width = dataset.shape[:3]
    if height != width:
        return (f"split {split!r} holds {height}x{width} (height x width) images, not square "
                "ones; make it with `blogml data prepare`, which crops them square")
    if count == 0:
        return (f"split {split!r} is empty; make the cache again with `blogml data prepare` "
                "from a source with images for it")
    return None


def batch_problem(split: str, count: int, batch_size: int) -> str | None:
    """Why `count` images of `split` cannot fill one training batch (every pass drops its
    remainder, so a pass would be no step at all), or None."""
    if batch_size > count:
        return (f"batch size {batch_size} exceeds the {count} images of split {split!r}; "
                "lower train.batch_size")
    return None


class HDF5Images:
    """Shuffled training batches of one split, and in-order batches of any split.

    The file is opened when the first iterator is made, once per process: a handle is
    never shared across a fork (a child opens its own) and is not pickled. Batches are
    uint8 (n, H, W, 3), or what `transform` makes of them (e.g. `to_unit_range`), computed
    in the prefetch thread.
    """

    def __init__(self, path: str | Path, split: str, batch_size: int, seed: int,
                 transform: Transform | None = None, prefetch: int = 4) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1 batch, got {prefetch}")
        self.path = Path(path)
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self.transform = transform
        self.prefetch = prefetch
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self.num_examples = self.split_size(split)
        problem = batch_problem(split, self.num_examples, batch_size)
        if problem:
            raise BlogmlError(f"{self.path}: {problem}")
        self.batches_per_pass = self.num_examples // batch_size

    def split_size(self, split: str) -> int:
        """Images in `split`; BlogmlError naming the file and the fix if it has none."""
        with open_cache(self.path) as h5:  # closed again: reads open their own
            return self._checked(h5, split).shape[0]

    def batches(self, start_step: int = 0) -> Iterator[np.ndarray]:
        """Endless training batches (remainder of each pass dropped), starting with the one
        for global step `start_step`: exactly the tail of the stream from step 0."""
        order = ArrayBatches([_Rows(self.dataset(self.split))], self.batch_size, self.seed)
        return prefetched((self._finish(batch) for (batch,) in order.batches(start_step)),
                          self.prefetch)

    def eval_batches(self, split: str, batch_size: int) -> Iterator[np.ndarray]:
        """Every image of `split` once, in file order; the last batch may be smaller."""
        rows = _Rows(self.dataset(split))
        return prefetched((self._finish(batch) for (batch,) in eval_batches([rows], batch_size)),
                          self.prefetch)

    def dataset(self, split: str) -> h5py.Dataset:
        """`split` in this process's handle (opened on first use, again after a fork)."""
        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._checked(self._handle, split)

    def _checked(self, h5: h5py.File, split: str) -> h5py.Dataset:
        problem = split_problem(h5, split)
        if problem:
            raise BlogmlError(f"{self.path}: {problem}")
        return h5[split]

    def close(self) -> None:
        """Close this process's handle (a later read opens it again)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_pid": None}

    def _finish(self, batch: np.ndarray) -> np.ndarray:
        return batch if self.transform is None else self.transform(batch)


class _Rows:
    """One split as the array `ArrayBatches` and `eval_batches` index, read on demand."""

    def __init__(self, dataset: h5py.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return self.dataset.shape[0]

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            return self.dataset[key]
        batch = np.empty((len(key), *self.dataset.shape[1:]), dtype=self.dataset.dtype)
        for position in np.argsort(key):  # increasing file offsets
            batch[position] = self.dataset[int(key[position])]
        return batch


# ---- prefetching ----------------------------------------------------------------------


class _Failure:
    """An exception raised in the prefetch thread, to be raised again in the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()
_POLL_SECONDS = 0.05  # how often a blocked producer checks whether it should stop
_JOIN_SECONDS = 5.0  # how long a closed iterator waits for its thread to finish


def prefetched(source: Iterator[Any], depth: int) -> Iterator[Any]:
    """Iterate `source` in a background thread, up to `depth` items ahead.

    The thread starts at the first `next`, and stops (closing `source`) when this iterator
    is exhausted, closed, or garbage-collected; an exception in the thread is raised here,
    in the consumer, with its traceback.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    # The thread must hold no reference to this generator, or it could never be collected.
    thread = threading.Thread(target=_produce, args=(source, items, stop), daemon=True,
                              name="blogml-prefetch")
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        # At interpreter exit daemon threads are frozen: joining one then would hang. The
        # join is bounded too: this may run from a garbage collection at any point of the
        # consumer, and a stuck read must not hold the run hostage (the thread is a daemon).
        if not sys.is_finalizing():
            thread.join(timeout=_JOIN_SECONDS)


def _produce(source: Iterator[Any], items: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in source:
            if not _put(items, item, stop):
                return
        _put(items, _END, stop)
    except BaseException as error:  # everything reaches the consumer, which decides
        _put(items, _Failure(error), stop)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _put(items: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put `item` once there is room; False if the consumer stopped first."""
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
