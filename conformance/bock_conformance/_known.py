"""Why a case fails on a known reference runtime (shown next to the failure in the report).

Keys are case names without the parameter part, or with it for a single parametrization. Only
failures that were run, looked at and understood are listed here; see README.md.
"""

from __future__ import annotations

RUNC_1_1: dict[str, str] = {}


def explain(case: str, runtimes: list[str]) -> str:
    """The known reason why *case* fails on the runtime described by *runtimes* (or "")."""
    if not any("runc version 1.1" in r for r in runtimes):
        return ""
    base = case.split("[", 1)[0]
    why = RUNC_1_1.get(case) or RUNC_1_1.get(base)
    return f"known on runc 1.1: {why}" if why else ""
