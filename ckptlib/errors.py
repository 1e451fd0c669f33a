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


class NodeNotFound(NotFound):
    """An op or tensor name asked for is not in the graph (the message lists close matches)."""


class UnsafeDestination(CkptError):
    """An output path would write into a checkpoint folder, which ckptlib never modifies."""


class GraphTooLarge(UnsupportedFormat):
    """A frozen graph would exceed protobuf's 2 GB message limit."""


class ForbiddenOps(CkptError):
    """A graph holds ops that could touch files, the network or processes; it is not run."""


class NotFrozen(UnsupportedFormat):
    """A GraphDef still holds variables: it must be frozen before it can be evaluated."""


class UnfedPlaceholder(CkptError):
    """A placeholder the output depends on has no value and no sensible default."""


class BadGraphIO(CkptError):
    """The input or output tensor cannot be found automatically or has an unusable shape or dtype."""


class DeviceUnavailable(CkptError):
    """The device asked for (e.g. a GPU) is not visible to TensorFlow."""


class DatasetError(CkptError):
    """The MNIST test set cannot be found, downloaded or read."""


class CorruptDataset(DatasetError):
    """A dataset file (MNIST IDX or npz) is truncated, garbled or of the wrong kind."""


class BadMappingRule(CkptError):
    """A --map rule that is not REGEX=REPL, does not compile, or sends two names to one."""


class ReviewUnavailable(CkptError):
    """The review database cannot be reached, opened, written, or holds a schema this release cannot read."""


class BadNote(CkptError):
    """A note that cannot be stored: a verdict not in the list, an empty text, a target that is not a run."""


class NothingToDo(CkptError):
    """A command found nothing to work on: no checkpoint at all, or every checkpoint skipped as unreadable."""


class LimitExceeded(CkptError):
    """Running a graph hit one of its limits (--time-limit, --memory-limit): the child process was stopped."""


class TimeLimitExceeded(LimitExceeded):
    """A graph ran longer than its time limit (an endless loop, or too little --time-limit)."""


class MemoryLimitExceeded(LimitExceeded):
    """A graph needed more memory than its limit, found before it ran (declared shapes) or while it ran."""


class GraphCrashed(CkptError):
    """The child process running a graph died: TensorFlow aborted, a segfault, or it exited without a result."""
