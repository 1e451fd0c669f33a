"""Read the retention settings (max_to_keep, keep_checkpoint_every_n_hours) from a .meta file."""

# A v1 Saver's state file records no timestamps, so what keep_checkpoint_every_n_hours preserved
# cannot be told from it; the SaverDef stored in every .meta file still says how the Saver was
# configured. Field numbers: tensorflow/core/protobuf/meta_graph.proto (MetaGraphDef.saver_def = 3)
# and tensorflow/core/protobuf/saver.proto (SaverDef.max_to_keep = 4,
# keep_checkpoint_every_n_hours = 6).

from __future__ import annotations

import struct
from dataclasses import dataclass

from ckptlib import storage
from ckptlib.formats.bundle.protos import BYTES, FIXED32, decode_message
from ckptlib.formats.bundle.table import FormatError

DEFAULT_EVERY_N_HOURS = 10000.0  # the Saver's default, meaning "never preserve"
MAX_META_BYTES = 512 << 20


@dataclass(frozen=True)
class Retention:
    """How the Saver that wrote a .meta was told to prune checkpoints."""

    max_to_keep: int
    keep_every_n_hours: float

    @property
    def preserves(self) -> bool:
        return 0 < self.keep_every_n_hours < DEFAULT_EVERY_N_HOURS


def read_retention(meta_path: str) -> Retention | None:
    """The SaverDef's retention settings, or None when the file is absent, huge or unreadable."""
    try:
        raw = storage.read_bytes(meta_path, MAX_META_BYTES)
        meta = decode_message(raw, {3: BYTES})
        if 3 not in meta:
            return None
        saver = decode_message(meta[3][-1], {4: 0, 6: FIXED32})
    except (OSError, ValueError, FormatError):  # ValueError: larger than MAX_META_BYTES
        return None
    hours_bits = saver.get(6, [None])[-1]
    hours = struct.unpack("<f", hours_bits.to_bytes(4, "little"))[0] if hours_bits is not None else 0.0
    return Retention(max_to_keep=int(saver.get(4, [0])[-1]), keep_every_n_hours=float(hours))
