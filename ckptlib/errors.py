"""The one exception family ckptlib raises: every message names the file and the problem."""


class CkptError(Exception):
    """Base class: a one-line, user-facing message naming the file and what is wrong with it."""


class NotFound(CkptError):
    """A checkpoint, run folder, file or variable that was asked for does not exist."""


class NotACheckpoint(CkptError):
    """A file or folder exists but is not a TensorFlow checkpoint (a foreign or empty file)."""


class CorruptCheckpoint(CkptError):
    """A checkpoint file is truncated, garbled or fails its checksum."""


class IncompleteCheckpoint(CkptError):
    """A checkpoint's index is readable but one of its data shards is missing or too short."""


class VariableNotFound(NotFound):
    """A variable name is not stored in the checkpoint."""


class UnsupportedFormat(CkptError):
    """The file is a checkpoint, but in a layout or dtype ckptlib cannot read."""


class OutsideRoot(CkptError):
    """A path lies outside the folders the dashboard was configured to read."""


class StateFileError(CkptError):
    """The `checkpoint` state file of a run cannot be parsed."""


class CorruptDataset(CkptError):
    """A dataset file (MNIST IDX or npz) is truncated, garbled or of the wrong kind."""
