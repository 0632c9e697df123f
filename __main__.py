"""``python -m cosearch``: the ``cosearch`` command, for when the venv's bin/ is not on PATH."""

import sys

from cosearch.cli import main

sys.exit(main())
