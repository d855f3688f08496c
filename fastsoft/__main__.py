"""``python -m fastsoft``: the command line (see :mod:`fastsoft.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
