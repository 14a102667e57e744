from repro.cli.main import main

raise SystemExit(main())
