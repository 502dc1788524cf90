"""The pytest plugin behind bock-conformance: options, the ``kit`` fixture, sections, differential mode.

Loaded with ``-p bock_conformance._plugin`` by :mod:`bock_conformance.cli` (and by xdist workers, which
re-read the same argument list). Each case declares its spec section with ``pytest.mark.section``; the
section is stored in the case's ``user_properties`` so that the JUnit XML (and the report built from it)
can group cases by section.

Differential mode (``--conf-compare PATH2``): :func:`pytest_pyfunc_call` runs the case body once with a
kit for the primary runtime and once with a kit for the second runtime, then compares the two lists of
observations. Any divergence (or a different verdict) fails the case with the list of differences.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from bock_conformance._kit import Kit

SECTIONS: dict[str, str] = {
    "lifecycle": "Lifecycle and operations (runtime.md)",
    "hooks": "Hooks (config.md)",
    "process": "Process (config.md)",
    "hostname": "Hostname and domainname (config.md)",
    "root": "Root (config.md)",
    "mounts": "Mounts (config.md)",
    "annotations": "Annotations (config.md)",
    "namespaces": "Namespaces (config-linux.md)",
    "devices": "Devices (config-linux.md)",
    "masked": "Masked and readonly paths (config-linux.md)",
    "sysctl": "Sysctl (config-linux.md)",
    "cgroups": "Cgroup resources (config-linux.md)",
    "seccomp": "Seccomp (config-linux.md)",
    "linux": "Other Linux settings (config-linux.md)",
    "cli": "runc CLI contract",
    "security": "Security regressions",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bock-conformance")
    group.addoption("--conf-runtime", default=None, help="the OCI runtime binary under test")
    group.addoption("--conf-compare", default=None, help="a second runtime for differential mode")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "section(name): the spec section a conformance case belongs to")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        mark = item.get_closest_marker("section")
        section = mark.args[0] if mark else "other"
        item.user_properties.append(("section", section))


def _runtime(config: pytest.Config) -> str:
    path = config.getoption("--conf-runtime") or os.environ.get("BOCK_CONFORMANCE_RUNTIME")
    if not path:
        raise pytest.UsageError("bock-conformance: --runtime PATH is required")
    return str(path)


@pytest.fixture
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    k = Kit(_runtime(request.config), "primary")
    try:
        yield k
    finally:
        k.close()


def _invoke(func: Any, funcargs: dict[str, Any]) -> tuple[str, BaseException | None]:
    try:
        func(**funcargs)
    except pytest.skip.Exception as exc:
        return "skipped", exc
    except Exception as exc:  # an assertion or an unexpected error: the case failed
        return "failed", exc
    return "passed", None


def diff_observations(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> list[str]:
    """Human-readable differences between two observation lists (position by position)."""
    out: list[str] = []
    for n in range(max(len(a), len(b))):
        left = a[n] if n < len(a) else None
        right = b[n] if n < len(b) else None
        if left != right:
            out.append(f"#{n}: {_fmt(left)} != {_fmt(right)}")
    return out


def _fmt(obs: tuple[str, Any] | None) -> str:
    if obs is None:
        return "(nothing)"
    kind, value = obs
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return f"{kind}={text[:300]}"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    compare = pyfuncitem.config.getoption("--conf-compare")
    if not compare or "kit" not in pyfuncitem.funcargs:
        return None
    names = pyfuncitem._fixtureinfo.argnames
    funcargs = {name: pyfuncitem.funcargs[name] for name in names}
    primary: Kit = funcargs["kit"]
    verdict_a, exc_a = _invoke(pyfuncitem.obj, funcargs)
    second = Kit(str(compare), "compare")
    try:
        verdict_b, exc_b = _invoke(pyfuncitem.obj, {**funcargs, "kit": second})
    finally:
        second.close()
    divergences = diff_observations(primary.observations, second.observations)
    if verdict_a != verdict_b:
        divergences.insert(0, f"verdict: {verdict_a} != {verdict_b} ({exc_b!s:.300})")
    props = pyfuncitem.user_properties
    props.append(("verdict_primary", verdict_a))
    props.append(("verdict_compare", verdict_b))
    for d in divergences:
        props.append(("divergence", d))
    if divergences:
        pytest.fail("runtimes diverge:\n" + "\n".join(divergences), pytrace=False)
    if exc_a is not None:
        raise exc_a
    return True
