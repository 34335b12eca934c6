"""``python -m synthinfer``: the ``synthinfer`` command line (see ``synthinfer.cli``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
