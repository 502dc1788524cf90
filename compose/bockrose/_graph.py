"""The depends_on graph: cycle detection naming the cycle, and the order of work."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import ConfigError


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as a list of service names (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(deps.get(n, ())):
            if d not in deps:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(deps):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def check_acyclic(deps: Mapping[str, Iterable[str]]) -> None:
    cycle = find_cycle(deps)
    if cycle:
        raise ConfigError(f"dependency cycle detected: {' -> '.join(cycle)}")


def topo_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependencies first; ties by name (deterministic)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> None:
        if n in seen:
            return
        seen.add(n)
        for d in sorted(deps.get(n, ())):
            if d in deps:
                visit(d)
        done.append(n)

    for n in sorted(deps):
        visit(n)
    return done


def closure(deps: Mapping[str, Iterable[str]], roots: Iterable[str]) -> set[str]:
    out: set[str] = set()
    todo = list(roots)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        out.add(n)
        todo.extend(d for d in deps.get(n, ()) if d in deps)
    return out
