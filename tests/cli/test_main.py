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


# A Ctrl-C during the job's imports, caught by a library that catches every exception (as
# one did once in the Ctrl-C test's "import" moment): SIGINT is ignored from then on, so
# the job would run to its end and exit 0.
SWALLOWED = """
import os, signal, sys
from mnistdist.cli import _registry, main

real = _registry.Job.load

def load(self):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the handler runs by this call's end
    except BaseException:
        pass
    return real(self)

_registry.Job.load = load
signal.signal(signal.SIGINT, signal.SIG_DFL)  # a terminal's job (a background run ignores it)
sys.argv = ["mnistdist", "report", "--dataset", "digits", "--out", sys.argv[1]]
raise SystemExit(main())
"""


def test_a_ctrl_c_an_import_swallowed_still_ends_the_run(tmp_path):
    proc = python_code(SWALLOWED, tmp_path / "results")
    assert proc.returncode == 130, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["mnistdist: interrupted; nothing was finished"], proc.stderr
    assert not (tmp_path / "results").exists()
