"""``mnistdist search`` as a script: ``python jobs/search.py [OPTIONS]`` (see ``--help``).

The job itself lives in the library (:mod:`mnistdist.cli`); this entry point only names it.
"""

import sys

from mnistdist.cli import main

if __name__ == "__main__":
    sys.argv.insert(1, "search")
    raise SystemExit(main())
