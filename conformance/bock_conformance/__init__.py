"""bock-conformance: an OCI runtime conformance suite for any runtime binary.

Public surface: :func:`main` (the ``bock-conformance`` command), :func:`build_report` (tables per
spec section from a JUnit XML file) and :class:`ConformanceError` (the root of our exceptions).
"""

from __future__ import annotations

from bock_conformance._errors import ConformanceError, HostError
from bock_conformance._report import build_report
from bock_conformance.cli import main

__all__ = ["ConformanceError", "HostError", "build_report", "main"]
__version__ = "0.1.0"
