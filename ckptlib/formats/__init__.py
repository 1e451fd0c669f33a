"""File → tensors: the Checkpoint interface every format implements, the sniffer, one module per format."""

from ckptlib.formats.base import CHUNK_ELEMENTS, Checkpoint
from ckptlib.formats.sniff import FORMATS, detect, open_checkpoint
from ckptlib.formats.types import VariableInfo

__all__ = ["CHUNK_ELEMENTS", "FORMATS", "Checkpoint", "VariableInfo", "detect", "open_checkpoint"]
