"""Decode a bundle's `.index` file into a BundleIndex: header, entries, partitioned slices, shard sizes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ckptlib import storage
from ckptlib.errors import CkptError, CorruptCheckpoint, NotACheckpoint, NotFound, UnsupportedFormat
from ckptlib.formats.bundle import protos
from ckptlib.formats.bundle.entries import NameClash, build_entries
from ckptlib.formats.bundle.protos import BundleEntry, BundlePart, EntryProto
from ckptlib.formats.bundle.table import (FormatError, NotATable, TableTooLarge, UnsupportedCompression, is_table_file,
                                          load_table_file, read_table)


def bundle_error(kind: type[CkptError], prefix: str, problem: str) -> CkptError:
    """`kind` with the message "Cannot read checkpoint 'PREFIX': PROBLEM." on one line."""
    return kind(one_line(f"Cannot read checkpoint '{prefix}': {problem}."))


def one_line(text: str) -> str:
    # Whatever a variable name or a library's message holds: line breaks (every character str.splitlines
    # breaks at) and other control characters are shown escaped.
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAX_SHARDS = 1_000_000  # a sanity bound: every shard is a file of its own


@dataclass(frozen=True)
class BundleIndex:
    """The decoded `.index` of a checkpoint. Example: `read_tensor(read_index("run/ckpt-5"), "w")`."""

    prefix: str
    num_shards: int
    entries: Mapping[str, BundleEntry]
    parts: Mapping[str, tuple[BundlePart, ...]] = field(default_factory=dict, repr=False)
    big_endian: bool = False

    def data_path(self, shard_id: int) -> str:
        """The data shard's file name (DataFilename in tensor_bundle.cc)."""
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def expected_shard_sizes(self) -> dict[int, int]:
        """Minimal byte size of every shard: the end of the last tensor stored in it (0 if none)."""
        sizes = dict.fromkeys(range(self.num_shards), 0)
        stored = [e for e in self.entries.values() if not e.is_partitioned]
        stored += [part.entry for parts in self.parts.values() for part in parts]
        for entry in stored:
            sizes[entry.shard_id] = max(sizes[entry.shard_id], entry.offset + entry.size)
        return sizes

    def shard_problems(self) -> tuple[str, ...]:
        """A sentence for every data shard that is missing or shorter than the index says; () if none."""
        problems = []
        for shard, needed in sorted(self.expected_shard_sizes().items()):
            path = self.data_path(shard)
            name = os.path.basename(path)
            if not storage.exists(path):
                problems.append(f"Data file {name} is missing.")
            elif why := _irregular(path):
                problems.append(f"Data file {name} is {why}.")  # a FIFO, a device, a link out of the run
            elif (have := storage.getsize(path)) < needed:
                problems.append(f"Data file {name} is truncated: {have} bytes, the index needs {needed}.")
        return tuple(problems)


def _irregular(path: str) -> str | None:
    if storage.is_url(path):
        return None
    try:
        return storage.irregular(storage.absolute(path))
    except OSError:  # gone since it was listed: the next check reports it
        return None


def _load_index(prefix: str) -> bytes:
    name = os.path.basename(prefix) + ".index"
    try:
        return load_table_file(prefix + ".index")
    except FileNotFoundError:
        if is_table_file(prefix):  # the single-file V1 format is a table of a different schema
            raise bundle_error(UnsupportedFormat, prefix, "it is a V1 checkpoint (one file, no .index), "
                         "not a V2 bundle") from None  # fmt: skip
        raise bundle_error(NotFound, prefix, f"index file {name} does not exist") from None
    except IsADirectoryError:
        raise bundle_error(NotACheckpoint, prefix, f"{name} is a folder") from None
    except storage.NotARegularFile as exc:  # a FIFO, a device, a link out of the folder: never opened
        raise bundle_error(NotACheckpoint, prefix, f"index file {name} is {exc.strerror}") from None
    except TableTooLarge as exc:
        raise bundle_error(NotACheckpoint, prefix, f"index file {name} is {exc}") from None
    except OSError as exc:
        raise bundle_error(CkptError, prefix, f"index file {name} cannot be read ({exc.strerror})") from None
    except NotATable as exc:
        head = exc.head
    # A bundle index starts with the entry for key "": shared=0, non_shared=0, then the header.
    if head.startswith(b"\x00\x00"):
        raise bundle_error(CorruptCheckpoint, prefix, f"index file {name} is truncated (no table footer)")
    if not head:
        raise bundle_error(NotACheckpoint, prefix, f"index file {name} is empty")
    if head.startswith(_HDF5_SIGNATURE):
        raise bundle_error(NotACheckpoint, prefix, f"index file {name} is an HDF5 file, not a bundle index")
    raise bundle_error(NotACheckpoint, prefix, f"index file {name} is not a TensorFlow checkpoint index")


def read_index(prefix: str) -> BundleIndex:
    """Decode PREFIX.index. Example: `read_index("run/model.ckpt-500").entries["w"].shape`."""
    data = _load_index(prefix)
    name = os.path.basename(prefix) + ".index"
    try:
        pairs = read_table(data)
        if not pairs or pairs[0][0] != b"":
            raise bundle_error(NotACheckpoint, prefix, f"{name} is a table without a bundle header")
        header = protos.parse_header(pairs[0][1])
        if not 1 <= header.num_shards <= _MAX_SHARDS:
            raise FormatError(f"header claims {header.num_shards} data shards")
        if header.min_consumer > 1 or 1 in header.bad_consumers:
            raise bundle_error(UnsupportedFormat, prefix, f"{name} needs a newer bundle reader "
                         f"(min_consumer={header.min_consumer})")  # fmt: skip
        entries, parts = build_entries(_parse_entries(pairs[1:]), header.num_shards)
    except NameClash as exc:
        raise bundle_error(UnsupportedFormat, prefix, f"{name}: {exc}") from None
    except UnsupportedCompression as exc:
        raise bundle_error(UnsupportedFormat, prefix, f"{name}: {exc}") from None
    except FormatError as exc:
        raise bundle_error(CorruptCheckpoint, prefix, f"index file {name} is corrupt: {exc}") from None
    return BundleIndex(prefix, header.num_shards, MappingProxyType(entries),
                       MappingProxyType(parts), header.big_endian)  # fmt: skip


def _parse_entries(pairs: list[tuple[bytes, bytes]]) -> dict[bytes, EntryProto]:
    raw = {}
    for key, value in pairs:
        try:
            raw[key] = protos.parse_entry(value)
        except FormatError as exc:  # name the variable whose entry is wrong
            raise FormatError(f"{protos.key_label(key)}: {exc}") from None
    return raw
