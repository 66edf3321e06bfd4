import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from mnistdist.drawing import DrawingProcess, Request, draw_here
from mnistdist.report import error_matrix

from helpers import process_env, wait_for


@pytest.fixture
def requests():
    cm = np.diag([5, 6, 7]) + 1
    return {
        "grid": Request("digits_grid", (np.arange(4 * 64).reshape(4, 64) % 17, [1, 2, 3, 4])),
        "errors": Request("error_figure", (error_matrix(cm), [0, 1, 2])),
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone but for its parent's wait.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_process_draws_what_this_process_draws(requests):
    here = draw_here(requests)
    with DrawingProcess() as drawing:
        drawing.start()
        child = drawing._child
        assert drawing.draw(requests) == here  # the same PNG bytes, twice over one pipe
        assert drawing.draw({"errors": requests["errors"]}) == {"errors": here["errors"]}
        assert os.getpgid(child.pid) == child.pid  # its own group: Ctrl-C is the job's
    assert child.returncode is not None  # closing it ended it
    assert drawing.draw(requests) == here  # drawn here from then on


def test_a_dead_process_leaves_the_drawing_here(requests, caplog):
    drawing = DrawingProcess().start()
    drawing._child.kill()
    with caplog.at_level(logging.WARNING, logger="mnistdist.drawing"):
        assert drawing.draw(requests) == draw_here(requests)
    assert "the drawing process failed" in caplog.text
    assert drawing._child is None
    drawing.close()


def test_a_figure_that_fails_there_fails_here_with_its_own_error():
    drawing = DrawingProcess().start()
    with pytest.raises(ValueError, match="7 pixels are not a square image"):
        drawing.draw({"bad": Request("digits_grid", (np.zeros((2, 7)),))})
    drawing.close()


def test_every_figure_of_the_package_can_be_asked_for():
    from mnistdist import drawing
    from mnistdist.drawing._process import FIGURES

    tools = {"DrawingProcess", "Request", "draw_here", "new_figure", "png_bytes"}
    assert set(FIGURES) == set(drawing.__all__) - tools


def test_only_this_packages_figures_can_be_asked_for():
    with pytest.raises(ValueError, match="no figure 'system'"):
        Request("system", ("rm -rf /",))


def test_the_process_ends_when_its_job_is_killed():
    """Its stdin closes with the job's process: it exits, whatever killed the job."""
    code = (
        "import sys, time; from mnistdist.drawing import DrawingProcess;"
        "d = DrawingProcess().start(); print(d._child.pid, flush=True); time.sleep(60)"
    )
    job = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=process_env()
    )
    try:
        child = int(job.stdout.readline())
        assert _alive(child)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=10)
    wait_for(lambda: not _alive(child), timeout=20)
