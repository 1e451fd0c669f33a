"""Entry point for `python -m ckptlib`."""

import sys

from ckptlib.cli.main import main

sys.exit(main())
