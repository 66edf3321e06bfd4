"""Helpers shared by the tests: real processes, real files (imported as ``helpers``)."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from mnistdist.data import MNIST_FILES, write_idx


def make_idx_folder(
    folder: pathlib.Path,
    n_train: int = 60,
    n_test: int = 20,
    side: int = 28,
    *,
    gz: bool = True,
    seed: int = 0,
):
    """A folder of four small, valid MNIST-format IDX files of random digits."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, side, side), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, side, side), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    for role, array in arrays.items():
        write_idx(folder / (MNIST_FILES[role] + suffix), array)
    return arrays


REPO = pathlib.Path(__file__).resolve().parents[1]


CLUSTER_DIR = REPO / "cluster"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(extra: dict | None = None) -> dict:
    """The environment for cluster processes: this interpreter's bin first, so `dask` is ours."""
    import sys

    env = {
        **os.environ,
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return {**env, **(extra or {})}


def sitecustomize(folder: pathlib.Path, code: str) -> dict:
    """A sitecustomize.py that every Python process started with the returned env runs first."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": str(folder)}


#: A sitecustomize for workers: every neighbour task (a query block's step through a
#: reference chunk, in full or screened by the bound, or a tile of a fold pair) sleeps first, so
#: a test can interrupt, kill or disconnect in the middle of a job at a moment it chooses.
SLOW_TASKS = """
import os, time
import mnistdist.neighbors._chain as _ch
import mnistdist.neighbors._fold_pairs as _fp

def _slowed(real):
    def slow(*args, **kwargs):
        time.sleep(float(os.environ.get("MNISTDIST_TEST_TASK_DELAY", "0.4")))
        hold = os.environ.get("MNISTDIST_TEST_TASK_HOLD")
        deadline = time.monotonic() + 300
        while hold and os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)
        return real(*args, **kwargs)
    return slow

_ch.search_step = _slowed(_ch.search_step)
_fp.tile_candidates = _slowed(_fp.tile_candidates)
"""


def journal_rows(out: pathlib.Path) -> int:
    """Rows committed to an output folder's journal (0 if none yet)."""
    import sqlite3

    path = out / "journal.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM neighbors").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def wait_for(predicate, timeout: float = 60, interval: float = 0.1):
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout`` seconds."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(
        f"timed out after {timeout} s waiting for {getattr(predicate, '__name__', predicate)}"
    )


def _python(args: list, env: dict | None, timeout: float):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        env=process_env(env),
        timeout=timeout,
    )


def mnistdist(*args, env: dict | None = None, timeout: float = 300):
    """Run the mnistdist command in a fresh process, as a user would."""
    return _python(["-m", "mnistdist", *args], env, timeout)


def python_code(code: str, *args, env: dict | None = None, timeout: float = 120):
    """Run ``code`` with ``args`` (``sys.argv[1:]``) in a fresh interpreter; its output captured."""
    return _python(["-c", code, *args], env, timeout)


def in_process(*args):
    """``mnistdist ARGS`` run by this process's ``cli.main``: a CompletedProcess, and its
    ``seconds``. For what a run settles before its job starts (its options, its folder's lock):
    the same code as the command, without starting an interpreter for each case."""
    import contextlib
    import io
    import subprocess
    import time

    from mnistdist import cli

    out, err = io.StringIO(), io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exit_:  # argparse's way out, an exit status in a process
            code = exit_.code
    done = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    done.seconds = time.perf_counter() - t
    return done


def assert_one_line_error(proc, code: int, text: str) -> None:
    """The process failed with ``code`` and one error line containing ``text``, no traceback."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0] and text in lines[0], proc.stderr


def csv_rows(path: pathlib.Path) -> list[dict]:
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def embedded_run(tmp_path_factory, *args) -> pathlib.Path:
    """Run a job on the embedded cluster (the fault tests' reference); return its output folder."""
    out = tmp_path_factory.mktemp("reference")
    proc = mnistdist(*args, "--out", out, "--workers", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def forged_gz(path: pathlib.Path, header: bytes, n_zero: int) -> None:
    """A valid gzip file of ``header`` then ``n_zero`` zero bytes, made in seconds whatever
    ``n_zero``: identical deflate blocks (each full-flushed, so each compresses alike) are
    repeated, and the trailer's CRC-32 and length are those of the whole content."""
    import struct
    import zlib

    block = 1 << 24
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    piece = deflate.compress(bytes(block)) + deflate.flush(zlib.Z_FULL_FLUSH)
    rest = n_zero % block
    tail = deflate.compress(bytes(rest)) + deflate.flush(zlib.Z_FINISH)
    crc, zeros = zlib.crc32(header), bytes(block)
    for _ in range(n_zero // block):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip, deflate, no name, no time
        f.write(head)
        for _ in range(n_zero // block):
            f.write(piece)
        f.write(tail)
        f.write(struct.pack("<II", crc, (len(header) + n_zero) & 0xFFFFFFFF))


def peak_rss_mb(args: list, env: dict | None = None, timeout: float = 300):
    """Run ``args``; return (completed process, its peak resident memory in MB), from the
    kernel's accounting of that child alone (``wait4``)."""
    import subprocess
    import threading
    import time

    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=process_env(env)
    )
    end = time.monotonic() + timeout
    # Drained in threads: a child blocked on a full pipe would never exit.
    out: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda n=n, s=s: out.__setitem__(n, s.read()))
        for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    while (done := os.wait4(proc.pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"{args} did not finish within {timeout} s")
        time.sleep(0.05)
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(done[1])  # reaped here: Popen will not wait
    result = subprocess.CompletedProcess(args, proc.returncode, out["stdout"], out["stderr"])
    return result, done[2].ru_maxrss / 1024


def counted_deskew(X: np.ndarray, log: str) -> np.ndarray:
    """Deskewed ``X``, its row count appended to the file ``log`` when a worker runs it: a
    stateless step (in a ``FunctionTransformer``) whose work a test can count."""
    from distributed import get_worker

    from mnistdist.preprocessing import Deskew

    try:
        get_worker()
    except ValueError:  # the client's probe of the output's shape
        pass
    else:
        with open(log, "a") as f:
            f.write(f"{len(X)}\n")
    return Deskew().fit_transform(X)


def counted_rows(log: pathlib.Path) -> int:
    """The rows :func:`counted_deskew` logged in ``log`` (emptied)."""
    rows = sum(int(n) for n in log.read_text().split()) if log.exists() else 0
    log.unlink(missing_ok=True)
    return rows
