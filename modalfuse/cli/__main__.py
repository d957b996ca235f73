"""``python -m modalfuse.cli``: the same as the ``modalfuse`` command."""
import sys

from . import main

sys.exit(main())
