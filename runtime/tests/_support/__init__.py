"""Helpers shared by bock's tests: a busybox rootfs, bundles, and a ``bock`` runner.

The fixtures in ``runtime/tests/conftest.py`` are thin wrappers around these.
"""
