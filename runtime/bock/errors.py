"""The one exception hierarchy of bock.

Every error the runtime reports is a :class:`BockError`. The message text follows
runc's wording wherever callers (containerd, podman, CRI-O) match on it.

    BockError
    ├── UsageError              bad command line ("Incorrect Usage.")
    ├── ConfigError             config.json unreadable, schema-invalid or semantically wrong
    ├── ContainerError          about one container
    │   ├── ContainerNotExist   "container does not exist"
    │   ├── ContainerExists     "container with given ID already exists"
    │   ├── InvalidID           "invalid container ID format"
    │   ├── ContainerNotRunning "container not running"
    │   ├── DamagedState        state.json unreadable (``delete --force`` still removes it)
    │   └── BadState            an operation that the status forbids
    ├── ExecError               the user process could not be started (missing binary, ...)
    └── SystemError_            a syscall or a kernel interface failed
"""

from __future__ import annotations


class BockError(Exception):
    """Base of every error bock reports. ``exit_code`` is what the command exits with."""

    exit_code = 1


class UsageError(BockError):
    pass


class ConfigError(BockError):
    pass


class ContainerError(BockError):
    pass


class ContainerNotExist(ContainerError):
    def __init__(self, cid: str | None = None) -> None:
        super().__init__("container does not exist")
        self.cid = cid


class ContainerExists(ContainerError):
    def __init__(self, cid: str) -> None:
        super().__init__("container with given ID already exists")
        self.cid = cid


class InvalidID(ContainerError):
    def __init__(self, cid: str) -> None:
        super().__init__(f"invalid container ID format: {cid!r}")
        self.cid = cid


class ContainerNotRunning(ContainerError):
    def __init__(self) -> None:
        super().__init__("container not running")


class DamagedState(ContainerError):
    pass


class BadState(ContainerError):
    pass


class ExecError(BockError):
    pass


class SystemError_(BockError):
    pass
