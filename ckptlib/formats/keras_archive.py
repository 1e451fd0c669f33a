"""A Keras 3 `.keras` file: a zip of config.json, metadata.json and model.weights.h5, read in place."""

# keras/src/saving/saving_lib.py (_save_model_to_fileobj) writes the members uncompressed (ZIP_STORED), so
# model.weights.h5 is a byte range of the `.keras` that h5py reads through a window: nothing is extracted,
# nothing is read whole. A member someone recompressed is read through zipfile's seekable stream instead.
# config.json is parsed as JSON only (no class is looked up, nothing in it runs): it names the model's class
# and every layer's class, config and trainable flag, which turns positions into Keras variable paths.

from __future__ import annotations

import contextlib
import json
import struct
import zipfile
from dataclasses import dataclass
from functools import cached_property

from ckptlib import errors, storage
from ckptlib.formats import h5io, keras_tree
from ckptlib.formats.h5checkpoint import H5Checkpoint
from ckptlib.formats.keras_h5 import is_keras3_layout
from ckptlib.formats.types import VariableInfo

SUFFIX = ".keras"
CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
MAX_JSON_BYTES = 64 << 20  # a config names every layer once: large models have a few MB
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (version … sizes), file name length, extra field length
_LOCAL_SIGNATURE = b"PK\x03\x04"


@dataclass(frozen=True)
class _Members:
    """Where model.weights.h5 is and what config.json says."""

    window: tuple[int, int] | None  # (offset, size) of a stored member; None when it is compressed
    config: keras_tree.KerasConfig | None
    keras_version: str | None


class KerasArchiveCheckpoint(H5Checkpoint):
    """A `.keras` model file: its weights named by Keras variable path (`sequential/hidden/kernel`).

    >>> ckpt = KerasArchiveCheckpoint("run/model.05.keras")  # doctest: +SKIP
    >>> ckpt.variables[0].display_name  # doctest: +SKIP
    'sequential/hidden/bias'
    """

    format_name = "keras"
    kind_of_file = "Keras file"

    @cached_property
    def _members(self) -> _Members:
        with self._zip() as archive:
            names = set(archive.namelist())
            if WEIGHTS not in names:
                other = next((n for n in sorted(names) if n.startswith("model.weights.")), None)
                if other is not None:
                    raise errors.UnsupportedFormat(f"{self.what}: its weights are {other}, not {WEIGHTS} "
                                                   "(only HDF5 weights are read).")
                raise errors.NotACheckpoint(f"{self.what}: a zip archive without {WEIGHTS}, not a Keras model file.")
            member = archive.getinfo(WEIGHTS)
            config = self._json(archive, CONFIG)
            metadata = self._json(archive, METADATA) or {}
        window = self._window(member) if member.compress_type == zipfile.ZIP_STORED else None
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        return _Members(window, keras_tree.read_config(config) if isinstance(config, dict) else None,
                        version if isinstance(version, str) else None)

    @contextlib.contextmanager
    def _zip(self):
        try:
            source = h5io.ByteWindow(self.prefix)
        except FileNotFoundError:
            raise errors.NotFound(f"{self.what}: no such file.") from None
        except IsADirectoryError:
            raise errors.NotACheckpoint(f"{self.what}: a folder, not a file.") from None
        except OSError as exc:
            raise errors.NotACheckpoint(f"{self.what}: {exc.strerror or exc}.") from None
        try:
            try:
                archive = zipfile.ZipFile(source)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                raise errors.CorruptCheckpoint(
                    f"{self.what}: not a complete zip archive ({exc or type(exc).__name__}); truncated, or still "
                    "being written.") from None
            with archive:
                yield archive
        finally:
            source.close()

    def _json(self, archive: zipfile.ZipFile, name: str):
        try:
            member = archive.getinfo(name)
        except KeyError:
            return None
        if member.file_size > MAX_JSON_BYTES:
            raise errors.CorruptCheckpoint(f"{self.what}: {name} is {member.file_size} bytes, too large to be one.")
        try:
            return json.loads(archive.read(name).decode("utf-8"))
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise errors.CorruptCheckpoint(f"{self.what}: {name} cannot be read ({exc}).") from None
        except (UnicodeDecodeError, ValueError):
            raise errors.CorruptCheckpoint(f"{self.what}: {name} is not JSON.") from None

    def _window(self, member: zipfile.ZipInfo) -> tuple[int, int]:
        """(offset, size) of a stored member's bytes: after its local header, whose lengths may differ from the
        central directory's (the extra field often does)."""
        head = bytearray(_LOCAL_HEADER.size)
        with storage.RangeFile(self.prefix) as f:
            got = f.readinto(member.header_offset, memoryview(head))
            total = f.size()
        if got != len(head) or head[:4] != _LOCAL_SIGNATURE:
            raise errors.CorruptCheckpoint(f"{self.what}: the zip entry of {WEIGHTS} is damaged.")
        _, name_length, extra_length = _LOCAL_HEADER.unpack(bytes(head))
        start = member.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        if start + member.file_size > total:
            raise errors.CorruptCheckpoint(f"{self.what}: {WEIGHTS} runs past the end of the file (truncated).")
        return start, member.file_size

    @property
    def keras_version(self) -> str | None:
        """The Keras version metadata.json records (e.g. '3.15.1'), None when absent."""
        return self._members.keras_version

    @contextlib.contextmanager
    def _open_source(self, source: int):
        what = f"{self.what}: {WEIGHTS}"
        window = self._members.window
        if window is not None:
            with h5io.open_h5(self.prefix, what, window) as handle:
                yield handle
            return
        import h5py

        with self._zip() as archive, archive.open(WEIGHTS) as stream:  # seekable: bounded memory, slower seeks
            try:
                handle = h5py.File(stream, "r")
            except OSError as exc:
                raise errors.CorruptCheckpoint(f"{what} does not open ({str(exc).splitlines()[0][:200]}).") from None
            with handle:
                yield handle

    def _list(self) -> tuple[tuple[VariableInfo, ...], dict[str, int]]:
        config = self._members.config
        with self._open_source(0) as handle:
            if not is_keras3_layout(handle):
                raise errors.NotACheckpoint(f"{self.what}: {WEIGHTS} is not in the Keras 3 layout.")
            nodes = keras_tree.scan(handle)
        return keras_tree.name_variables(nodes, config), {}


def sniff(path: str) -> str | None:
    """`path` when it is named like a `.keras` file (missing too: opening says so), else None."""
    return path if path.endswith(SUFFIX) and not storage.isdir(path) else None
