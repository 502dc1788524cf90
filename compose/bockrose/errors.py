"""bockrose's one exception hierarchy."""

from __future__ import annotations


class ComposeError(Exception):
    """Base of every error bockrose reports (the CLI prints it and exits 1)."""


class ConfigError(ComposeError):
    """The compose file(s) are invalid: unknown key, bad value, cycle, missing variable."""


class InterpolationError(ConfigError):
    """`${VAR:?message}` with VAR unset, or a malformed `${...}`."""


class RuntimeFailure(ComposeError):
    """The OCI runtime (bock or runc) failed or lacks a subcommand."""


class NetworkError(ComposeError):
    """Bridge, veth, netns, NAT or DNS set-up failed."""


class MonitorError(ComposeError):
    """The project's monitor process could not be started or reached."""


class DependencyError(ComposeError):
    """A depends_on condition failed (unhealthy, exited non-zero, never started)."""
