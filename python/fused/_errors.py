"""Exception classes of the fused SDK, and the one mapping from engine error kinds to them."""

from __future__ import annotations


class FusedError(Exception):
    """Base class of every error raised by terrafuse."""


class InvalidArgumentError(FusedError, ValueError):
    """An argument or input is invalid; the message names it."""


class NotFoundError(FusedError, LookupError):
    """A UDF, file, key or entry does not exist."""


class AlreadyExistsError(FusedError, FileExistsError):
    """Something to be created exists already."""


class PermissionDeniedError(FusedError, PermissionError):
    """The caller may not do this."""


class DeadlineExceededError(FusedError, TimeoutError):
    """An operation did not finish in its time limit."""


class EngineIOError(FusedError, OSError):
    """A file-system or network operation of the engine failed."""


class UnauthenticatedError(FusedError, PermissionError):
    """The request needs valid credentials (an API token)."""


class UnavailableError(FusedError, ConnectionError):
    """The service cannot take the request now (shutting down, overloaded); try again."""


class FusedNotImplementedError(FusedError, NotImplementedError):
    """The operation or data type is not supported (yet)."""


class WorkerCrashedError(FusedError, RuntimeError):
    """The worker process running a UDF died (signal, memory); it has been replaced."""


class UdfError(FusedError, RuntimeError):
    """A UDF raised. Carries the UDF's own traceback and captured output."""

    def __init__(self, message: str, *, traceback: str = "", stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.traceback = traceback
        self.stdout = stdout
        self.stderr = stderr

    def __str__(self) -> str:
        text = super().__str__()
        if self.traceback and self.__cause__ is None:  # a local cause prints its own traceback
            text += "\n\n" + self.traceback.rstrip()
        return text


_BY_KIND = {
    "invalid_argument": InvalidArgumentError,
    "unprocessable_entity": InvalidArgumentError,
    "too_large": InvalidArgumentError,
    "method_not_allowed": InvalidArgumentError,
    "unauthenticated": UnauthenticatedError,
    "unavailable": UnavailableError,
    "not_implemented": FusedNotImplementedError,
    "worker_crashed": WorkerCrashedError,
    "not_found": NotFoundError,
    "already_exists": AlreadyExistsError,
    "permission_denied": PermissionDeniedError,
    "timeout": DeadlineExceededError,
    "io_error": EngineIOError,
    "udf_failed": UdfError,
}


def from_kind(kind: str, message: str) -> Exception:
    """Build the exception for an engine error kind (called by fused._core's translator)."""
    return _BY_KIND.get(kind, FusedError)(message)
