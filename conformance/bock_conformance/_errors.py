"""The one exception hierarchy of bock-conformance."""

from __future__ import annotations


class ConformanceError(Exception):
    """Root of every error bock-conformance raises on purpose."""


class HostError(ConformanceError):
    """The host lacks something the suite itself needs (busybox-static, root)."""


class UsageError(ConformanceError):
    """Bad command-line input (missing runtime binary, unknown report format)."""
