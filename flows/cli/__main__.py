"""`python -m flows.cli`: the `wmf` command without the installed entry point."""

import sys

from flows.cli import main

sys.exit(main())
