"""Entry point for `python -m ckptlib`."""

import sys

from ckptlib.cli import main

sys.exit(main())
