"""``python -m adamlab.serve``: the playground, as ``adamlab serve`` runs it."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
