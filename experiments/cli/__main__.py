"""``python -m experiments.cli``: the same as the ``archscale`` command."""
import sys

from . import main

sys.exit(main())
