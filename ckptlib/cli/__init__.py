"""The command line, `python -m ckptlib SUBCOMMAND`: parser, subcommands, text and JSON rendering."""

from ckptlib.cli.main import main

__all__ = ["main"]
