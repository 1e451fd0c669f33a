"""The pure ckptlib helpers pages use directly (parsing inputs, formatting, JSON); pages import ckptlib only here."""

from ckptlib.cli.report import diff_doc
from ckptlib.cli.textfmt import human_bytes
from ckptlib.compare.health import health_from_trends
from ckptlib.compare.mapping import parse_rule
from ckptlib.compare.trends import change_matrix
from ckptlib.evaluate.feeds import parse_feeds
from ckptlib.formats.kinds import KINDS

__all__ = ["KINDS", "change_matrix", "diff_doc", "health_from_trends", "human_bytes", "parse_feeds", "parse_rule"]
