"""A dataset on a cluster: read by its workers, or sent to those that cannot read its files."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import socket

import dask.array as da
import numpy as np

from ._datasets import Dataset, load_dataset

log = logging.getLogger(__name__)


def _file_probe(files: tuple[tuple[str, int, str], ...], client: tuple[str, int]):
    """A function (pickled by value) telling which of ``files`` a process cannot read as is.

    Each file must be there with its size and its content's SHA-256 (a stale
    copy on another machine, or another dataset's file of the same size, is
    not the data). The client's own process (``client``: its host and pid),
    where in-process workers run, checked the files moments ago.
    """

    def probe(dask_worker=None):
        import hashlib
        import os
        import socket

        here = (socket.gethostname(), os.getpid()) == client
        bad = []
        for path, size, sha256 in files:
            try:
                if os.path.getsize(path) != size:
                    bad.append(path)
                    continue
                digest = hashlib.sha256()
                with open(path, "rb") as f:
                    while not here and (block := f.read(1 << 22)):
                        digest.update(block)
                if not here and digest.hexdigest() != sha256:
                    bad.append(path)
            except OSError:
                bad.append(path)
        return bad

    return probe


def unreadable_files(dataset: Dataset, client) -> dict[str, list[str]]:
    """The dataset's files that some worker cannot read (same path, size and SHA-256), by worker."""
    if not dataset.files:
        return {}
    me = (socket.gethostname(), os.getpid())
    return {addr: bad for addr, bad in client.run(_file_probe(dataset.files, me)).items() if bad}


def _scatter_rows(client, X: da.Array, name: str) -> da.Array:
    """``X`` read here and sent to the workers once, chunk by chunk, as a Dask array of futures."""
    local = X.compute(scheduler="sync")
    bounds = np.cumsum((0,) + X.chunks[0])
    parts = [local[a:b] for a, b in itertools.pairwise(bounds)]
    # Unique keys: a hashed key shared with an earlier scatter is dropped when that one is released.
    futures = client.scatter(parts, hash=False)
    blocks = [
        da.from_delayed(f, shape=p.shape, dtype=p.dtype, name=f"{name}-{i}-{f.key}")
        for i, (f, p) in enumerate(zip(futures, parts, strict=False))
    ]
    return da.concatenate(blocks, axis=0)


def load_on_cluster(
    name: str = "mnist",
    client=None,
    *,
    data_dir: str | os.PathLike | None = None,
    train_size: int | None = None,
    chunk_rows: int | None = None,
) -> Dataset:
    """A dataset read by the cluster's workers once, and kept in their memory for the job.

    Workers read the IDX files themselves; where some cannot (another
    machine, another mount), the images are read here and sent to the
    workers once, and the dataset's ``unreadable`` says which files which
    workers could not read. Without a client, the dataset as
    :func:`load_dataset` gives it.

    Parameters
    ----------
    name, data_dir, train_size, chunk_rows
        As for :func:`load_dataset`.
    client : distributed.Client, optional
        The cluster whose workers read the images.

    Returns
    -------
    Dataset
        With its images persisted on the workers when there is a client.
    """
    dataset = load_dataset(name, data_dir=data_dir, train_size=train_size, chunk_rows=chunk_rows)
    if client is None:
        return dataset
    if unreadable := unreadable_files(dataset, client):
        log.warning("%d workers cannot read the data files: sending the images", len(unreadable))
        dataset = dataclasses.replace(scatter_dataset(dataset, client), unreadable=unreadable)
    return dataset.persist()  # read the files once, whatever the phases that follow


def scatter_dataset(dataset: Dataset, client) -> Dataset:
    """The dataset with its images read on the client and sent to the workers once (scatter)."""
    return dataclasses.replace(
        dataset,
        X_train=_scatter_rows(client, dataset.X_train, f"scattered-{dataset.name}-train"),
        X_test=_scatter_rows(client, dataset.X_test, f"scattered-{dataset.name}-test"),
        files=(),
        source=f"{dataset.source} (sent from the client)",
    )
