"""bock: a runc-compatible OCI runtime.

The public surface is small and lazy: importing ``bock`` costs nothing, so the
command line stays fast. Use :mod:`bock.errors` for the exception hierarchy.
"""

from __future__ import annotations

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"

__all__ = ["CAP_NAMES", "SPEC_VERSION", "__version__"]


def __getattr__(name: str) -> object:
    """``CAP_NAMES``: the capability names in kernel order (index = capability number), loaded
    on first use so that ``import bock`` stays free."""
    if name == "CAP_NAMES":
        from ._security.caps import CAP_NAMES

        return CAP_NAMES
    raise AttributeError(f"module 'bock' has no attribute {name!r}")
