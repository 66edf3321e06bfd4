from jobs.console import main

raise SystemExit(main())
