"""``python -m mnistdist JOB ...``: the ``mnistdist`` command."""

from mnistdist.cli import main

raise SystemExit(main())
