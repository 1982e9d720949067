from aid.cli import main

raise SystemExit(main())
