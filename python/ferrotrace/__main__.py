"""`python -m ferrotrace`: the `ferrotrace` command (see ferrotrace.cli)."""

import sys

from ferrotrace.cli import main

sys.exit(main())
