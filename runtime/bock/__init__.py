"""bock: a runc-compatible OCI runtime.

The public surface is small and lazy: importing ``bock`` costs nothing, so the
command line stays fast. Use :mod:`bock.errors` for the exception hierarchy.
"""

from __future__ import annotations

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"

__all__ = ["SPEC_VERSION", "__version__"]
