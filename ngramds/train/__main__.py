"""``python -m ngramds.train``: the ``ngramds-train`` command."""
import sys

from .cli import main

sys.exit(main())
