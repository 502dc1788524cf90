"""Shared helpers for bock-conformance's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE = os.environ.get("BOCK_CONFORMANCE_TEST_RUNTIME", "/usr/sbin/runc")


@pytest.fixture
def reference_runtime() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not shutil.which(REFERENCE):
        pytest.skip(f"reference runtime {REFERENCE} not installed")
    return REFERENCE


@pytest.fixture
def run_tool():
    """A function running the bock-conformance command (``python -m bock_conformance.cli``)."""
    return _run_tool


def _run_tool(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bock_conformance.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).parent,
    )
