from traffic.cli import main

raise SystemExit(main())
