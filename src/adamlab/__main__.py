"""``python -m adamlab``: the ``adamlab`` command."""

import sys

from .cli import main

sys.exit(main())
