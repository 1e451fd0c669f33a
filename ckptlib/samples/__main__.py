"""Entry point for `python -m ckptlib.samples`."""

import sys

from ckptlib.samples.cli import main

sys.exit(main())
