"""Read the LevelDB-style immutable table that a tensor bundle's `.index` file is."""

# Layout, as written by tensorflow/core/lib/io/table_builder.cc and read by table.cc:
#   [data block]* [metaindex block] [index block] [footer: 48 bytes]
# Footer (format.cc, Footer::EncodeTo): metaindex BlockHandle, index BlockHandle, zero padding
# to 40 bytes, then the magic 0xdb4775248b80fb57 as a little-endian fixed64.
# BlockHandle (format.cc): varint64 offset, varint64 size; the block's contents are followed
# by a 5-byte trailer: 1 compression-type byte and the masked crc32c of contents + type byte.
# Block (block.cc / block_builder.cc): entries, then a uint32 restart array, then uint32
# num_restarts; entry = varint32 shared, varint32 non_shared, varint32 value_length,
# key[shared:] bytes, value bytes (keys are prefix-compressed against the previous key).

from __future__ import annotations

import struct

import numpy as np

from ckptlib.storage import RangeFile

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
_NO_COMPRESSION = 0
_SNAPPY_COMPRESSION = 1
# The crc32c mask constant from tensorflow/core/lib/hash/crc32c.h (Mask/Unmask): stored
# checksums are rotated and offset so that a crc of data containing crcs stays robust.
_MASK_DELTA = 0xA282EAD8


class FormatError(Exception):
    """A structural problem in the bytes; the caller adds which file it came from."""


class UnsupportedCompression(FormatError):
    """A block uses a compression this installation cannot undo."""


# --- crc32c: prefer a C implementation; the pure-python table is a last resort. -------------
def _python_crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _python_crc32c_table()


def python_crc32c(data, crc: int = 0) -> int:
    """crc32c of a bytes-like object, extending `crc` (slow pure-python fallback)."""
    crc ^= 0xFFFFFFFF
    for byte in memoryview(data).cast("B"):
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:
    import google_crc32c as _google_crc32c

    def crc32c(data, crc: int = 0) -> int:
        """crc32c of a bytes-like object, extending `crc`."""
        # google_crc32c only takes read-only buffers; a read-only numpy view is zero-copy.
        if not isinstance(data, bytes):
            data = np.frombuffer(data, dtype=np.uint8)
            data.flags.writeable = False
        return _google_crc32c.extend(crc, data)

    CRC32C_IMPLEMENTATION = "google-crc32c"
except ImportError:  # pragma: no cover - depends on the installation
    try:
        from crc32c import crc32c as _crc32c_ext

        def crc32c(data, crc: int = 0) -> int:
            """crc32c of a bytes-like object, extending `crc`."""
            return _crc32c_ext(data, crc)

        CRC32C_IMPLEMENTATION = "crc32c"
    except ImportError:
        crc32c = python_crc32c
        CRC32C_IMPLEMENTATION = "python"


def unmask_crc(masked: int) -> int:
    """Undo crc32c::Mask (tensorflow/core/lib/hash/crc32c.h)."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """crc32c::Mask (tensorflow/core/lib/hash/crc32c.h)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


# --- varints (tensorflow/core/lib/core/coding.cc) -------------------------------------------
def read_varint(buf, pos: int, limit: int, max_bytes: int = 10) -> tuple[int, int]:
    """Decode an unsigned little-endian base-128 varint at buf[pos:limit]; return (value, end)."""
    result = 0
    shift = 0
    for i in range(pos, min(limit, pos + max_bytes)):
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i + 1
        shift += 7
    if limit - pos < max_bytes:
        raise FormatError(f"truncated varint at byte {pos}")
    raise FormatError(f"overlong varint at byte {pos}")


# --- blocks ---------------------------------------------------------------------------------
def _read_handle(buf, pos: int, limit: int) -> tuple[tuple[int, int], int]:
    offset, pos = read_varint(buf, pos, limit)
    size, pos = read_varint(buf, pos, limit)
    return (offset, size), pos


def _snappy_decompress(raw: bytes) -> bytes:
    # The stored uncompressed length is bounded before inflating: snappy cannot expand a
    # stream by more than ~21x, so a larger claim means a garbled block, not a big one.
    length, _ = read_varint(raw, 0, len(raw), max_bytes=5)
    if length > 32 * len(raw) + 1024:
        raise FormatError(f"snappy block claims {length} bytes from {len(raw)}")
    try:
        import cramjam
    except ImportError:
        cramjam = None
    if cramjam is not None:
        try:
            return bytes(cramjam.snappy.decompress_raw(raw))
        except cramjam.DecompressionError as exc:
            raise FormatError(f"snappy block does not decompress ({exc})") from None
    try:
        import snappy
    except ImportError:
        raise UnsupportedCompression(
            "index blocks are snappy-compressed; install 'cramjam' or 'python-snappy' to read them"
        ) from None
    try:
        return snappy.uncompress(raw)
    except snappy.UncompressError as exc:
        raise FormatError(f"snappy block does not decompress ({exc})") from None


def read_block(data: bytes, handle: tuple[int, int], end: int) -> bytes:
    """Return the verified, decompressed contents of the block at `handle` (format.cc ReadBlock)."""
    offset, size = handle
    if offset + size + BLOCK_TRAILER_SIZE > end:
        raise FormatError(f"block at offset {offset} (size {size}) runs past the end of the table")
    contents_and_type = data[offset : offset + size + 1]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if crc32c(contents_and_type) != unmask_crc(stored):
        raise FormatError(f"block at offset {offset} fails its crc32c check")
    kind = data[offset + size]
    contents = contents_and_type[:-1]
    if kind == _NO_COMPRESSION:
        return contents
    if kind == _SNAPPY_COMPRESSION:
        return _snappy_decompress(contents)
    raise FormatError(f"block at offset {offset} has unknown compression type {kind}")


def iter_block(block: bytes):
    """Yield (key, value) pairs of one block in order (block.cc Block::Iter)."""
    if len(block) < 4:
        raise FormatError(f"block of {len(block)} bytes is too short for its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    if num_restarts > (len(block) - 4) // 4:
        raise FormatError(f"block claims {num_restarts} restart points in {len(block)} bytes")
    limit = len(block) - 4 * (num_restarts + 1)
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = read_varint(block, pos, limit, 5)
        non_shared, pos = read_varint(block, pos, limit, 5)
        value_len, pos = read_varint(block, pos, limit, 5)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise FormatError(f"bad block entry at byte {pos}")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        yield key, block[pos : pos + value_len]
        pos += value_len


def has_table_magic(data: bytes) -> bool:
    """Whether `data` ends with a table footer magic number."""
    return len(data) >= FOOTER_SIZE and struct.unpack_from("<Q", data, len(data) - 8)[0] == TABLE_MAGIC


class NotATable(FormatError):
    """The file does not end in a table footer; `head` holds its first bytes to tell why."""

    def __init__(self, head: bytes):
        super().__init__("the table footer (magic number) is missing")
        self.head = head


def _ends_in_magic(f: RangeFile, size: int) -> bool:
    if size < FOOTER_SIZE:
        return False
    tail = bytearray(8)
    return f.readinto(size - 8, memoryview(tail)) == 8 and int.from_bytes(tail, "little") == TABLE_MAGIC


def is_table_file(path: str) -> bool:
    """Whether the file at `path` ends in a table footer (reads 8 bytes; False if unreadable)."""
    try:
        with RangeFile(path) as f:
            return _ends_in_magic(f, f.size())
    except OSError:
        return False


class TableTooLarge(FormatError):
    """The file ends like a table but is larger than any index ckptlib reads whole (MAX_TABLE_BYTES)."""

    def __init__(self, size: int):
        super().__init__(f"too large to be an index ({size} bytes)")
        self.size = size


# An index holds ~64 bytes per tensor (5000 tensors: 320 KB): 256 MB is millions of tensors, more than any
# checkpoint seen. A larger file is refused before a byte of it is read, rather than read whole.
MAX_TABLE_BYTES = 256 << 20


def load_table_file(path: str, limit: int = MAX_TABLE_BYTES) -> bytes:
    """A table file's bytes; a file without the footer magic is not read whole (raises NotATable), nor one
    larger than `limit` (TableTooLarge)."""
    with RangeFile(path) as f:
        size = f.size()
        if not _ends_in_magic(f, size):
            head = bytearray(min(8, size))
            raise NotATable(bytes(head[: f.readinto(0, memoryview(head))]))
        if size > limit:
            raise TableTooLarge(size)
        data = bytearray(size)
        got = f.readinto(0, memoryview(data))
        return bytes(data[:got])


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a table held in `data`, in key order (table.cc Table::Open)."""
    if not has_table_magic(data):
        raise FormatError("the table footer (magic number) is missing: the file is truncated or garbled")
    footer_start = len(data) - FOOTER_SIZE
    _metaindex, pos = _read_handle(data, footer_start, footer_start + 40)
    index_handle, _ = _read_handle(data, pos, footer_start + 40)
    index_block = read_block(data, index_handle, footer_start)
    pairs: list[tuple[bytes, bytes]] = []
    for _separator, handle_bytes in iter_block(index_block):
        handle, _ = _read_handle(handle_bytes, 0, len(handle_bytes))
        for key, value in iter_block(read_block(data, handle, footer_start)):
            # Keys are strictly increasing in a well-formed table; anything else is damage.
            if pairs and key <= pairs[-1][0]:
                raise FormatError(f"keys out of order near {key[:40]!r}")
            pairs.append((key, value))
    return pairs
