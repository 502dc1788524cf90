"""Make ``import bock`` resolve to this checkout's runtime/ (not an installed copy elsewhere)."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
