"""``mnistdist benchmark`` as a script: ``python jobs/benchmark.py [OPTIONS]`` (see ``--help``).

The job itself lives in the library (:mod:`mnistdist.cli`); this entry point only names it.
"""

import sys

from mnistdist.cli import main

if __name__ == "__main__":
    sys.argv.insert(1, "benchmark")
    raise SystemExit(main())
