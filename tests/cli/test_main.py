"""The ``mnistdist`` command's own process: its exit code and exit hooks, without the teardown."""

from helpers import assert_one_line_error, python_code

# A job that fails in its preflight (an empty --out), with an exit hook registered
# during the job, as Distributed registers its own: it must still run.
LATE_HOOK = """
import atexit, sys
from mnistdist.cli import _run, main

real = _run.JobRun.take_out  # the first step of every run

def take_out(self):
    atexit.register(lambda: print("late hook ran", flush=True))
    return real(self)

_run.JobRun.take_out = take_out
sys.argv = ["mnistdist", "report", "--dataset", "digits", "--out", ""]
raise SystemExit(main())
"""


def test_the_command_exits_with_the_jobs_code_after_its_exit_hooks():
    proc = python_code(LATE_HOOK)
    assert_one_line_error(proc, 2, "--out")
    assert proc.stdout.strip() == "late hook ran"
