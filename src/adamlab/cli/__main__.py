"""``python -m adamlab.cli``: the ``adamlab`` command."""

import sys

from . import main

sys.exit(main())
