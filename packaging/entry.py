"""Entry script of the PyInstaller bundle: the same `main` as the `lmdesk` command."""

import sys

from lmdesk.cli import main

if __name__ == "__main__":
    sys.exit(main())
