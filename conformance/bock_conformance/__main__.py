"""``python -m bock_conformance``: the same as the ``bock-conformance`` command."""

from __future__ import annotations

import sys

from bock_conformance.cli import main

sys.exit(main())
