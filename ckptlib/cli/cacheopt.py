"""Options many subcommands share: --no-cache and the result cache it turns off, the --reader choices."""

from __future__ import annotations

import argparse

from ckptlib.cache.store import ENV_CACHE, ResultCache

# ckptlib.formats.v2bundle.BACKENDS, spelled here so that building the parser loads no reader (tested equal).
READERS = ("native", "tf")


def add_cache_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--no-cache", action="store_true",
                     help=f"compute afresh, neither reading nor filling the result cache (${ENV_CACHE} moves it)")


def result_cache(args) -> ResultCache | None:
    """The shared on-disk cache, or None with --no-cache."""
    return None if getattr(args, "no_cache", False) else ResultCache()
