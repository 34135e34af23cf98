"""`python -m lmdesk` runs the same entry point as the `lmdesk` command."""

import sys

from lmdesk.cli import main

sys.exit(main())
